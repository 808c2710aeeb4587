// Gathers the status screen: the stacks from the Pulumi backend, then Verda (billing now, cost
// reports, leftovers), R2 (last verified backups) and the watchdog, in parallel. Each source that
// fails becomes an unknown with its cause and fix; the others still answer.
import { collectCostReport } from "../money/collect";
import { parseMoneySettings } from "../money/settings";
import type { MoneyApi } from "../money/verda-reads";
import type { VerdaClient } from "../verda/client";
import type { VerdaClientOptions } from "../verda/http";
import { backupStatus, type BackupSetStatus, type R2Access } from "./backups";
import { failure, probe, type Probe } from "./probe";
import { listStacks, readStackConfig, readStackState, type AsyncCli, type StackConfig, type StackEntry, type StackState } from "./stacks";
import { readVerda, sweepable, verdaForStatus, verdaNow, type VerdaNow } from "./verda";
import { watchdogStatus, type WatchdogStatus } from "./watchdog";
import type { Leftover } from "../money/sweep";
import type { BudgetCheck } from "../money/budget";

export interface CostSummary {
  toDate: number;
  forecast: number;
  budget: BudgetCheck;
}

export interface StackRow extends StackEntry {
  up: boolean;
  /** What Verda bills now for the ids in this stack's state. */
  perHour?: number;
  cost?: Probe<CostSummary>;
  state: Probe<{ resourceCount: number }>;
}

export interface StatusReport {
  generatedAt: string;
  stacks: Probe<StackRow[]>;
  verda: Probe<Omit<VerdaNow, "book" | "leftovers">>;
  backups: Probe<Array<{ set: string; status: Probe<BackupSetStatus> }>>;
  watchdog: Probe<WatchdogStatus>;
  leftovers: Probe<{ items: Leftover[]; sweepable: number; perMonth: number }>;
  attention: string[];
  elapsedMs: number;
}

export interface StatusDeps {
  cli: AsyncCli;
  env: NodeJS.ProcessEnv;
  now?: Date;
  /** Verda for the given credentials (tests and the CLI use the real client). */
  verda?: (o: VerdaClientOptions) => { client: VerdaClient; api: MoneyApi };
}

const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
const rejectWith = <T>(p: Probe<unknown>): Promise<T> => Promise.reject(failure(p.ok ? "" : p.cause, p.ok ? "" : p.fix));
const unwrap = async <T>(p: Promise<Probe<T>>): Promise<T> => {
  const r = await p;
  return r.ok ? r.value : rejectWith<T>(r);
};

/** The cause of a source that only failed because the stacks could not be listed (not repeated under attention). */
const DEPENDS_ON_STACKS = "needs the idle stack, and the stacks cannot be listed";
const IDLE_MISSING = "scripts/pulumi stack ls shows no idle stack: bring it up first (scripts/pulumi up --stack idle)";

function verdaCredentials(env: NodeJS.ProcessEnv, idle?: StackConfig): VerdaClientOptions {
  const clientId = env.VERDA_CLIENT_ID || str(idle?.values["verda:clientId"]) || idle?.secrets["verda:clientId"];
  const clientSecret = env.VERDA_CLIENT_SECRET || idle?.secrets["verda:clientSecret"] || str(idle?.values["verda:clientSecret"]);
  if (!clientId || !clientSecret) {
    throw failure("no Verda credentials", "export VERDA_CLIENT_ID and VERDA_CLIENT_SECRET, or set verda:clientId and verda:clientSecret (--secret) on the idle stack");
  }
  return { clientId, clientSecret, baseUrl: env.VERDA_BASE_URL || str(idle?.values["verda:baseUrl"]) };
}

function r2Access(outputs: Record<string, unknown>): R2Access {
  const endpoint = str(outputs.r2Endpoint);
  const accessKeyId = str(outputs.r2AccessKeyId);
  const secretAccessKey = str(outputs.r2SecretAccessKey);
  const buckets = outputs.bucketNames as Record<string, string> | undefined;
  if (!endpoint || !accessKeyId || !secretAccessKey || !buckets) {
    throw failure("the idle stack has no R2 outputs (r2Endpoint, r2AccessKeyId, r2SecretAccessKey, bucketNames)", "run scripts/pulumi up --stack idle");
  }
  return { endpoint, accessKeyId, secretAccessKey, buckets };
}

/** Every secret value this run holds, so the printer can prove none is shown. */
export function secretsOf(idleConfig?: StackConfig, r2?: R2Access, verda?: VerdaClientOptions): string[] {
  return [...Object.values(idleConfig?.secrets ?? {}), r2?.accessKeyId ?? "", r2?.secretAccessKey ?? "", verda?.clientSecret ?? ""].filter((s) => s.length >= 4);
}

export async function collectStatus(deps: StatusDeps): Promise<{ report: StatusReport; secrets: string[] }> {
  const started = Date.now();
  const now = deps.now ?? new Date();
  const states = new Map<string, Promise<Probe<StackState>>>();
  const configs = new Map<string, Promise<Probe<StackConfig>>>();
  // One export (owned ids, outputs) and one config read per stack, all at once; of the idle stack, its outputs and config
  // are read with their secrets revealed (in memory only), its state is not decrypted.
  const read = (name: string, idle: boolean) => {
    states.set(name, probe(`run scripts/pulumi stack export --stack ${name}`, () => readStackState(deps.cli, name, idle)));
    configs.set(name, probe(`run scripts/pulumi config --stack ${name}`, () => readStackConfig(deps.cli, name, idle)));
  };
  // The idle stack (what every other source needs) is read while the stacks are listed.
  read("idle", true);
  const listed = await probe("check PULUMI_BACKEND_URL and the passphrase (README, Running Pulumi)", () => listStacks(deps.cli));
  const stacks = listed.ok ? listed.value : [];
  const idleName = stacks.find((s) => s.layer === "idle")?.name;
  if (idleName !== "idle") {
    states.delete("idle");
    configs.delete("idle");
  }
  for (const s of stacks) if (!states.has(s.name)) read(s.name, s.name === idleName);
  const noIdle = <T>(): Promise<T> => Promise.reject(listed.ok ? failure("no idle stack", IDLE_MISSING) : failure(DEPENDS_ON_STACKS, "fix the stacks (above) first"));
  const idleState = idleName ? unwrap(states.get(idleName)!) : noIdle<StackState>();
  const idleConfig = idleName ? unwrap(configs.get(idleName)!) : noIdle<StackConfig>();
  const secrets = new Set<string>();
  const remember = (list: string[]) => list.forEach((s) => secrets.add(s));

  const credentials = (async () => {
    const cfg = await idleConfig.catch(() => undefined);
    remember(secretsOf(cfg));
    const c = verdaCredentials(deps.env, cfg);
    remember(secretsOf(undefined, undefined, c));
    return c;
  })();
  const verdaClients = credentials.then((c) => (deps.verda ?? verdaForStatus)(c));

  const allStates = Promise.all(stacks.map(async (s) => ({ stack: s.name, state: await states.get(s.name)! })));
  const ownership = allStates.then((all) => {
    const owner = new Map<string, string>();
    for (const { stack, state } of all) if (state.ok) state.value.ids.forEach((id) => owner.set(id, stack));
    return { owner, unreadable: all.filter((a) => !a.state.ok).map((a) => a.stack) };
  });

  // Verda is read while the stacks are still being exported; the owners are matched afterwards.
  const verdaRead = verdaClients.then(({ api }) => readVerda(api));
  verdaRead.catch(() => undefined);
  const verdaP = probe("check VERDA_BASE_URL / the Verda API status and the credentials", async () => {
    const read = await verdaRead;
    const { owner } = await ownership;
    return verdaNow(read, (id) => owner.get(id.toLowerCase()), new Set(owner.keys()));
  });

  const backupsP = probe("check that the R2 endpoint (the idle stack's r2Endpoint output) answers and that its R2 keys are valid (scripts/pulumi up --stack idle renews them)", async () => {
    const r2 = r2Access((await idleState).outputs);
    remember(secretsOf(undefined, r2));
    return backupStatus(r2, now);
  });

  const watchdogP = probe("set comfyume:watchdog on the idle stack (docs/money.md)", async () => {
    const cfg = await idleConfig;
    return watchdogStatus(parseMoneySettings({ watchdog: cfg.values["comfyume:watchdog"] }).watchdog, now);
  });

  const costs = new Map<string, Promise<Probe<CostSummary>>>();
  for (const s of stacks.filter((x) => x.layer !== "idle")) {
    costs.set(s.name, probe(`run npm run cost -- --stack ${s.name}`, async () => {
      const { client, api } = await verdaClients;
      // Verda's lists, read once for the whole screen: the report prices this stack's ids from them.
      const listed = await verdaRead;
      const settled = new Map<string, StackConfig | undefined>();
      for (const [name, p] of configs) {
        const r = await p;
        settled.set(name, r.ok ? r.value : undefined);
      }
      const state = await unwrap(states.get(s.name)!);
      const report = await collectCostReport(s.name, { source: { config: (n) => settled.get(n)?.values, outputs: (n) => (n === s.name ? state.outputs : {}) }, api, client, now, listed });
      return { toDate: report.toDate.total, forecast: report.forecast.phaseTotal, budget: report.budget };
    }));
  }

  const [verda, backups, watchdog] = await Promise.all([verdaP, backupsP, watchdogP]);
  const { unreadable } = await ownership;
  // Without every stack's state, an owned resource would look like a leftover.
  const leftovers: StatusReport["leftovers"] = verda.ok
    ? !listed.ok || unreadable.length > 0
      ? { ok: false, cause: listed.ok ? `cannot read the state of ${unreadable.join(", ")}, so its resources could look like leftovers` : "the stacks cannot be listed, so every resource could look like a leftover", fix: listed.ok ? "fix the stack state read (see the stack's row)" : listed.fix, ms: 0 }
      : { ok: true, value: { items: verda.value.leftovers, sweepable: sweepable(verda.value.leftovers).length, perMonth: verda.value.leftovers.reduce((t, l) => t + l.perMonth, 0) }, ms: verda.ms }
    : { ok: false, cause: verda.cause, fix: verda.fix, ms: verda.ms };

  const rows: StackRow[] = [];
  for (const s of stacks) {
    const state = await states.get(s.name)!;
    const perHour = verda.ok ? verda.value.resources.filter((r) => r.stack === s.name).reduce((t, r) => t + r.perHour, 0) : undefined;
    rows.push({ ...s, up: s.resourceCount > 0, perHour, cost: costs.has(s.name) ? await costs.get(s.name)! : undefined, state: state.ok ? { ok: true, value: { resourceCount: state.value.resourceCount }, ms: state.ms } : state });
  }
  const stacksProbe: Probe<StackRow[]> = listed.ok ? { ok: true, value: rows, ms: listed.ms } : listed;
  const verdaOut: StatusReport["verda"] = verda.ok ? { ok: true, ms: verda.ms, value: { currency: verda.value.currency, balance: verda.value.balance, perHour: verda.value.perHour, resources: verda.value.resources } } : verda;
  const report: StatusReport = { generatedAt: now.toISOString(), stacks: stacksProbe, verda: verdaOut, backups, watchdog, leftovers, attention: [], elapsedMs: 0 };
  report.attention = attentionOf(report);
  report.elapsedMs = Date.now() - started;
  return { report, secrets: [...secrets] };
}

/** What the admin must look at; empty means all is well (exit 0). */
export function attentionOf(r: StatusReport): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  // One line per cause: a source that failed only because another did is not listed again.
  const unknown = (what: string, p: Probe<unknown>) => {
    if (p.ok || p.cause === DEPENDS_ON_STACKS || seen.has(p.cause)) return;
    seen.add(p.cause);
    out.push(`${what}: unknown (${p.cause}; fix: ${p.fix})`);
  };
  unknown("stacks", r.stacks);
  unknown("Verda", r.verda);
  unknown("backups", r.backups);
  unknown("watchdog", r.watchdog);
  if (r.verda.ok) unknown("leftovers", r.leftovers);
  for (const row of r.stacks.ok ? r.stacks.value : []) {
    unknown(`stack ${row.name}`, row.state);
    if (row.cost && r.verda.ok) unknown(`cost of ${row.name}`, row.cost);
    if (row.cost?.ok && row.cost.value.budget.verdict === "over") out.push(row.cost.value.budget.message);
    if (row.updateInProgress) out.push(`stack ${row.name}: an update is in progress (or a crashed one left its lock: scripts/pulumi cancel --stack ${row.name})`);
  }
  for (const b of r.backups.ok ? r.backups.value : []) unknown(`backup set ${b.set}`, b.status);
  if (r.leftovers.ok && r.leftovers.value.sweepable > 0) out.push(`${r.leftovers.value.sweepable} billed leftover(s) no stack owns: npm run sweep (then npm run sweep -- --delete)`);
  const w = r.watchdog.ok ? r.watchdog.value : undefined;
  const day = r.stacks.ok ? r.stacks.value.find((s) => s.name === w?.dayStack) : undefined;
  if (w?.enabled && day?.up && w.inWindow && (w.minutesPastCutoff ?? 0) > w.graceMinutes) {
    out.push(`${w.dayStack} is still up ${w.minutesPastCutoff} min past the watchdog cutoff ${w.cutoff} ${w.timezone}: see /var/log/comfyume/watchdog.log on mello, or run scripts/pulumi destroy --stack ${w.dayStack}`);
  }
  return out;
}
