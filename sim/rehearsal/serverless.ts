// `npm run rehearse -- --serverless`: the workshop cycle with the GPU work on Verda serverless container
// deployments (inference = serverless) and the app on the month's app host (app.host = verda, the host
// that mounts the SFS and backs up <sfs>/outputs). idle up → month up (SFS seeded, deployments at zero
// replicas, app host) → day up (the day's scaling: a replica starts) → workshop (prompts reach a replica
// stand-in, which writes outputs to the SFS; the billing clock runs 3 h) → day destroy with the app host
// unreachable (fault: back to zero, then the backup fails and the destroy stops, nothing claimed) → day
// destroy (<sfs>/outputs and the app's files backed up to R2, read back and hashed) → month destroy → idle only.
// Every check that fails makes the run fail. The table ends with a 3-hour day on serverless against the
// instance variant's day, from the simulator's billing and from the cost model (serverless-cost.ts).
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { startLocalCloud, type LocalCloud } from "../local-cloud";
import { startReplicaStandIn, type ReplicaStandIn } from "../local-cloud/replica-stand-in";
import { DEFAULT_TIMING } from "../simulator";
import type { WorkFile } from "./activity";
import { APP_BACKUP_SET, appHost, appIdentity, appSets, checkAppBackedUp, checkAppHostUp } from "./app-host";
import { slowestSteps, timeline } from "./event-log";
import { pulumiRunner, REPO_ROOT, type PulumiRunner } from "./pulumi-runner";
import { latestManifest, latestManifestKey, manifestProblems, manifestTable, readObject, sha256, type BackupSet, type SetManifest } from "./r2-readback";
import { phaseTable, type PhaseRecord } from "./report";
import type { RehearsalOptions, RehearsalResult } from "./run";
import { compareDayCosts, costTable } from "./serverless-cost";
import { APP_DATA_DIR, dayStack, idleStack, monthStack, type AppOnVerda } from "./stack-files";
import { initStack, runPhase, writeStack } from "./phase";

const MONTH = "testing-month";
const DAY = "workshop-day";
const HOUR_MS = 3_600_000;
/** The workshop day the cost comparison prices. */
export const WORKSHOP_HOURS = 3;
const PREFIX = "comfyume-rehearsal-worker";
const SPOT = `${PREFIX}-h100-spot`;
const ON_DEMAND = `${PREFIX}-h100-on-demand`;
/** H100, as the instance variant's 1H100.80S.32V: the same GPU on both sides of the comparison. */
export const SERVERLESS = {
  namePrefix: PREFIX,
  image: "ghcr.io/ahelme/comfyume-worker:rehearsal",
  deployments: [{ gpu: "H100", spot: true }, { gpu: "H100", spot: false, minReplicas: 0 }],
  scaling: { minReplicas: 1, maxReplicas: 4 },
};
const FORECAST = { workshopDays: 1, hoursPerDay: WORKSHOP_HOURS };

/** `what` when true; otherwise fails the phase with `what` and, when given, what was found instead. */
const must = (cond: boolean, what: string, found?: string) => {
  if (!cond) throw new Error(found === undefined ? what : `${what} (found: ${found})`);
  return what;
};

/** The serverless stacks' settings: the month's and day's usual ones, inference = serverless, app on Verda. */
export function serverlessStacks(env: Record<string, string>, app: AppOnVerda, opts: { loader: boolean; protect: boolean }) {
  const instanceDay = dayStack(env, DAY, MONTH, true) as Record<string, unknown>;
  const serverless = { "comfyume:inference": "serverless", "comfyume:serverless": SERVERLESS };
  return {
    // No scratch: nothing but the SFS holds the workers' files (day lifetime = none in the month).
    month: { ...(monthStack(env, MONTH, { ...opts, app }) as object), "comfyume:scratch": { lifetime: "day" }, ...serverless },
    day: {
      "comfyume:phase": DAY,
      "comfyume:stackRefs": { idle: "idle", month: MONTH },
      "comfyume:app": { host: "verda" },
      // Few dials: the fault phase makes the app host unreachable, and loopback needs no retries.
      "comfyume:ssh": { ...(instanceDay["comfyume:ssh"] as object), dialErrorLimit: 3 },
      "comfyume:timeouts": instanceDay["comfyume:timeouts"],
      "comfyume:forecast": FORECAST,
      ...serverless,
    },
    /** The instance variant's day, for the comparison (the default rehearsal's day stack). */
    instanceDay: { ...instanceDay, "comfyume:forecast": FORECAST },
  };
}

export async function rehearseServerless(o: RehearsalOptions): Promise<RehearsalResult> {
  const orderedMs = Math.round(o.provisioningMs / 4);
  const loopbackNet = process.env.COMFYUME_REHEARSAL_NET || undefined;
  const cloud = await startLocalCloud({
    timing: { orderedMs, provisioningMs: o.provisioningMs - orderedMs },
    speed: o.speed,
    loopbackNet,
    workerBackupSets: ["comfyume-workshop-day", APP_BACKUP_SET],
  });
  o.say(`local cloud up in ${(cloud.startupMs / 1000).toFixed(1)} s: Verda simulator, mello, S3 seeded with ${cloud.seed.objects} objects`);
  const inferenceKey = randomBytes(24).toString("hex");
  const replicas = await startReplicaStandIn({ host: new URL(cloud.verda.origin).hostname, verda: cloud.verda, sfsDir: (id) => cloud.sfsDir(id), inferenceKey });
  const phases: PhaseRecord[] = [];
  try {
    const logDir = path.join(REPO_ROOT, ".comfyume/rehearsal");
    fs.rmSync(logDir, { recursive: true, force: true });
    const projectDir = cloud.env.COMFYUME_SIM_PROJECT_DIR;
    const run = new ServerlessCycle(cloud, pulumiRunner(projectDir, cloud.env, logDir, o.say), projectDir, phases, o.say, replicas, inferenceKey);
    const { benchmark, tables } = await run.cycle();
    const table = [phaseTable(phases, cloud.verda.state().currency), ...tables].join("\n\n");
    return { phases, table, benchmark, ok: phases.every((p) => p.ok) };
  } finally {
    await replicas.close();
    await cloud.close();
  }
}

class ServerlessCycle {
  private readonly app: AppOnVerda;
  private readonly hfToken = `hf_rehearsal${randomBytes(12).toString("hex")}`;
  private readonly tables: string[] = [];
  private sfsId = "";
  /** The day stack's own forecast of its day (costEstimate output, money gate). */
  private stackForecast = NaN;

  constructor(
    private readonly cloud: LocalCloud,
    private readonly pulumi: PulumiRunner,
    private readonly projectDir: string,
    private readonly phases: PhaseRecord[],
    private readonly say: (line: string) => void,
    private readonly replicas: ReplicaStandIn,
    private readonly inferenceKey: string,
  ) {
    this.app = appIdentity(cloud);
  }

  /** Times a phase and its simulated cost; a failed check is recorded, then rethrown. */
  private phase(name: string, body: () => Promise<string[]>): Promise<void> {
    return runPhase(this.cloud, this.phases, this.say, name, body);
  }

  private writeStack(stack: string, config: object): void {
    writeStack(this.projectDir, "rehearsal --serverless", stack, config);
  }

  private initStack(stack: string, config: object, secrets: Record<string, string>): Promise<void> {
    return initStack(this.pulumi, this.projectDir, "rehearsal --serverless", stack, config, secrets);
  }

  private stacks(opts: { loader: boolean; protect: boolean }) {
    return serverlessStacks(this.cloud.env, this.app, opts);
  }

  private deployment(name: string) {
    return this.cloud.verda.state().container_deployments.find((d) => d.name === name);
  }

  private scalingOf(name: string): { min_replica_count: number; max_replica_count: number } | undefined {
    return this.deployment(name)?.scaling as { min_replica_count: number; max_replica_count: number } | undefined;
  }

  private runningReplicaMeters() {
    return this.cloud.verda.state().meters.filter((m) => m.resource_type === "replica" && m.running);
  }

  /** Verda writes (no reads, no token calls) since exchange `from`. */
  private writesSince(from: number): string[] {
    return this.cloud.verda.exchanges().slice(from).map((x) => `${x.method} ${x.url.split("?")[0]}`).filter((r) => !r.startsWith("GET ") && !r.endsWith("/oauth2/token")).sort();
  }

  private async prompt(deployment: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`${this.replicas.url}/${deployment}/prompt`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.inferenceKey}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: { "3": { class_type: "KSampler", inputs: { seed: Math.floor(Math.random() * 1e9) } } } }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.text() };
  }

  private atRest(names: string[]): string {
    const off = names.filter((n) => {
      const s = this.scalingOf(n);
      return !s || s.min_replica_count !== 0 || s.max_replica_count !== 0;
    });
    must(off.length === 0, "every deployment exists at zero replicas", off.map((n) => `${n} ${JSON.stringify(this.scalingOf(n) ?? "missing")}`).join(", "));
    must(this.runningReplicaMeters().length === 0, "no replica bills", this.runningReplicaMeters().map((m) => m.description).join(", "));
    return `${names.length} deployments at zero replicas (min 0, max 0), no replica billing`;
  }

  private sfsOutputsSet(): BackupSet {
    return { name: "sfs/outputs", bucket: this.cloud.s3.buckets.userFiles, prefix: "sfs/outputs" };
  }

  /** Each output the replica wrote is in the newest sfs/outputs manifest with its hash, and its object reads back to it. */
  private outputsInR2(): string[] {
    const m = latestManifest(this.cloud, this.sfsOutputsSet());
    const problems: string[] = [];
    for (const s of this.replicas.served()) {
      const rel = s.sfsPath.replace(/^outputs\//, "");
      const entry = m.entries.find((e) => e.path === rel);
      if (!entry) problems.push(`${s.sfsPath}: not in ${m.key ?? "any manifest"}`);
      else if (entry.sha256 !== s.sha256) problems.push(`${s.sfsPath}: manifest has ${entry.sha256}, the replica wrote ${s.sha256}`);
      else {
        const got = sha256(readObject(this.cloud, m.set.bucket, `${m.set.prefix}/${entry.key}`));
        if (got !== s.sha256) problems.push(`${s.sfsPath}: object read back hashes to ${got}, not ${s.sha256}`);
      }
    }
    return problems;
  }

  async cycle(): Promise<{ benchmark: RehearsalResult["benchmark"]; tables: string[] }> {
    const env = this.cloud.env;
    const sshKey = fs.readFileSync(env.COMFYUME_SIM_ADMIN_KEY_FILE, "utf8");
    const names = [SPOT, ON_DEMAND];

    await this.phase("idle up", async () => {
      await this.initStack("idle", idleStack(env), { "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID, "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY });
      await this.pulumi.run("idle up", ["up", "--stack", "idle", "--yes"]);
      return [must(this.cloud.verda.state().ssh_keys.length === 2, "2 Verda SSH keys"), must(this.cloud.verda.state().container_deployments.length === 0, "no deployment")];
    });

    await this.phase(`${MONTH} up (serverless, seeded)`, async () => {
      const secrets = { "comfyume:sshPrivateKey": sshKey, "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD, "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY, "comfyume:hfToken": this.hfToken };
      await this.initStack(MONTH, this.stacks({ loader: true, protect: true }).month, secrets);
      await this.pulumi.run("month up (loader)", ["up", "--stack", MONTH, "--yes"]);
      this.writeStack(MONTH, this.stacks({ loader: false, protect: true }).month);
      await this.pulumi.run("month up (loader off)", ["up", "--stack", MONTH, "--yes"]);
      const sfs = this.cloud.verda.state().volumes.find((v) => v.type === "NVMe_Shared" && !("deleted_at" in v));
      if (!sfs) throw new Error("an SFS exists");
      this.sfsId = sfs.id;
      const models = fs.readdirSync(path.join(this.cloud.sfsDir(sfs.id), "models"), { recursive: true }).length;
      const wrongMount = names.filter((n) => !this.deployment(n)?.containers.some((c) => (c.volume_mounts ?? []).some((m) => m.type === "shared" && (m as { volume_id?: string }).volume_id === sfs.id)));
      const carriers = this.cloud.verda.exchanges().filter((x) => (x.requestBody + x.responseBody + x.url).includes(this.hfToken)).map((x) => `${x.method} ${x.url}`);
      const cold = await this.prompt(SPOT);
      return [
        must(models > 0, `SFS seeded from R2 (${models} model entries)`),
        must(this.cloud.verda.state().instances.length === 1 && this.cloud.verda.state().instances[0]!.id === appHost(this.cloud).id, "loader deleted, only the app host left"),
        ...(await checkAppHostUp(this.cloud)),
        must(this.cloud.verda.state().container_deployments.length === 2, `2 deployments (${names.join(", ")})`),
        this.atRest(names),
        must(wrongMount.length === 0, `each mounts the month's SFS ${sfs.id.slice(0, 8)} at /mnt/sfs`, `not: ${wrongMount.join(", ")}`),
        must(carriers.length === 1 && carriers[0] === "POST /v1/secrets", "the HF token travelled only to POST /v1/secrets", carriers.join(", ") || "none"),
        must(cold.status === 503, "a prompt at zero replicas is refused (503: no running replica)", `${cold.status} ${cold.body.slice(0, 80)}`),
      ];
    });

    let dayUpMs = 0;
    const dayUpEvents = path.join(this.cloud.dir, "day-up.events.jsonl");
    await this.phase(`${DAY} up (serverless)`, async () => {
      await this.initStack(DAY, this.stacks({ loader: false, protect: true }).day, { "comfyume:sshPrivateKey": sshKey });
      const from = this.cloud.verda.exchanges().length;
      const started = Date.now();
      const up = await this.pulumi.run("day up", ["up", "--stack", DAY, "--yes", "--json"]);
      fs.writeFileSync(dayUpEvents, up.stdout);
      const writes = this.writesSince(from);
      await waitUntil(() => this.runningReplicaMeters().length > 0, 60_000, "a replica of the spot deployment running");
      dayUpMs = Date.now() - started;
      const meters = this.runningReplicaMeters();
      const estimate = JSON.parse((await this.pulumi.run("day cost estimate", ["stack", "output", "costEstimate", "--json", "--stack", DAY])).stdout) as { forecast: { byLayer: { day: number } } };
      this.stackForecast = estimate.forecast.byLayer.day;
      return [
        must(JSON.stringify(writes) === JSON.stringify(names.map((n) => `PATCH /v1/container-deployments/${n}/scaling`).sort()), "one PATCH of the scaling per deployment, nothing else written at Verda", writes.join(", ")),
        must(this.scalingOf(SPOT)?.min_replica_count === 1 && this.scalingOf(SPOT)?.max_replica_count === 4, "spot: min 1, max 4"),
        must(this.scalingOf(ON_DEMAND)?.min_replica_count === 0 && this.scalingOf(ON_DEMAND)?.max_replica_count === 4, "on-demand fallback: min 0, max 4"),
        must(meters.length === 1 && meters[0]!.resource_id.startsWith(`${SPOT}/`), `1 replica running and billed (${meters.map((m) => `${m.description} at ${m.price_per_hour}/h`).join(", ")}), ${(dayUpMs / 1000).toFixed(1)} s after day up started`),
        "the app host mounts the month's SFS (the outputs hook's pre-flight checked its marker) and holds <sfs>/outputs",
      ];
    });

    const userFiles: WorkFile[] = [];
    let replicaCost3h = 0;
    await this.phase(`workshop (${WORKSHOP_HOURS} h on the billing clock)`, async () => {
      for (let i = 1; i <= 3; i++) {
        const r = await this.prompt(SPOT);
        must(r.status === 200, `prompt ${i} served by the replica`, `${r.status} ${r.body.slice(0, 120)}`);
      }
      const served = this.replicas.served();
      const onSfs = served.filter((s) => fs.existsSync(path.join(this.cloud.sfsDir(s.volumeId), s.sfsPath)) && s.volumeId === this.sfsId);
      const app = appHost(this.cloud);
      const seen = await this.cloud.exec(app.id, `sha256sum ${served.map((s) => `/mnt/sfs/${s.sfsPath}`).join(" ")}`);
      const sameBytes = served.filter((s) => seen.out.includes(`${s.sha256}  /mnt/sfs/${s.sfsPath}`));
      // The users' own files on the app host (their data, as the app writes it): the day's destroy backs them up too.
      for (const dir of ["user_data", "outputs"]) {
        const file = `${APP_DATA_DIR}/${dir}/user001/serverless-day-${dir}.bin`;
        const made = await this.cloud.exec(app.id, `mkdir -p "$(dirname ${file})" && head -c 20000 /dev/urandom > ${file} && sha256sum ${file} && stat -c %s ${file}`);
        const [hashLine, size] = made.out.trim().split("\n");
        userFiles.push({ host: "mello", setRoot: "app", path: file, sha256: hashLine!.split(/\s+/)[0]!, bytes: Number(size) });
      }
      // The workshop hours on the billing clock: what the running replica bills for a 3-hour day.
      const replicaCost = () => this.cloud.verda.state().meters.filter((m) => m.resource_type === "replica").reduce((n, m) => n + m.cost, 0);
      const before = replicaCost();
      this.cloud.verda.advanceClock(WORKSHOP_HOURS * HOUR_MS);
      replicaCost3h = replicaCost() - before;
      return [
        must(onSfs.length === 3, `3 prompts served by replica ${served[0]?.replica}; its outputs on the SFS (${onSfs.map((s) => s.sfsPath).join(", ")})`),
        must(sameBytes.length === 3, "the app host sees the same bytes at /mnt/sfs/outputs (SHA-256)"),
        `${userFiles.length} user files on the app host`,
        `billing clock +${WORKSHOP_HOURS} h: the replica billed ${replicaCost3h.toFixed(4)}`,
      ];
    });

    const sets = [this.sfsOutputsSet(), ...appSets(this.cloud)];
    const onSfs = () => this.replicas.served().filter((s) => fs.existsSync(path.join(this.cloud.sfsDir(s.volumeId), s.sfsPath))).length;
    await this.phase(`${DAY} destroy, app host unreachable (fault)`, async () => {
      const app = appHost(this.cloud);
      const before = new Map(sets.map((s) => [s.name, latestManifestKey(this.cloud, s)]));
      const from = this.cloud.verda.exchanges().length;
      await this.cloud.faults.sshDown(app.id);
      let failed;
      try {
        failed = await this.pulumi.run("day destroy (app host down)", ["destroy", "--stack", DAY, "--yes", "--run-program"], { allowFailure: true });
      } finally {
        await this.cloud.faults.sshUp(app.id);
      }
      const log = fs.readFileSync(failed.logFile, "utf8");
      const stale = sets.filter((s) => latestManifestKey(this.cloud, s) !== before.get(s.name)).map((s) => s.name);
      return [
        must(failed.code !== 0, "the destroy stops with an error", `exit ${failed.code}`),
        must(/backup-before-delete/.test(log) && /could not connect to/.test(log), "naming the backup hook and the unreachable app host", log.split("\n").filter((l) => /error/i.test(l)).slice(0, 3).join(" | ")),
        must(JSON.stringify(this.writesSince(from)) === JSON.stringify(names.map((n) => `PATCH /v1/container-deployments/${n}/scaling`).sort()), "the deployments went back to zero first (one PATCH each)", this.writesSince(from).join(", ")),
        this.atRest(names),
        must(stale.length === 0, "no new manifest (nothing claimed as backed up)", stale.join(", ")),
        must(onSfs() === this.replicas.served().length, "the outputs are still on the SFS; the next destroy backs them up"),
      ];
    });

    let backedUp: SetManifest[] = [];
    await this.phase(`${DAY} destroy`, async () => {
      const before = new Map(sets.map((s) => [s.name, latestManifestKey(this.cloud, s)]));
      const from = this.cloud.verda.exchanges().length;
      await this.pulumi.run("day destroy", ["destroy", "--stack", DAY, "--yes", "--run-program"]);
      const writes = this.writesSince(from);
      backedUp = sets.map((s) => latestManifest(this.cloud, s));
      const problems = manifestProblems(backedUp, before);
      const outputs = this.outputsInR2();

      return [
        this.atRest(names),
        must(writes.length === 0, "no Verda call (the scalings went in the failed attempt), no deployment deleted", writes.join(", ")),
        must(problems.length === 0, `new, non-empty manifests for ${sets.map((s) => s.name).join(", ")}`, problems.join("; ")),
        must(outputs.length === 0, `the replica's ${this.replicas.served().length} outputs in R2 set sfs/outputs (newest manifest, objects read back, SHA-256)`, outputs.join("; ")),
        must(onSfs() === this.replicas.served().length, "the outputs are still on the SFS"),
        must(appHost(this.cloud).id !== "", "app host kept running"),
      ];
    });
    this.tables.push(`R2 after ${DAY} destroy: each set's newest manifest, read back from the S3 endpoint\n${manifestTable(backedUp)}`);

    await this.phase(`${MONTH} destroy`, async () => {
      this.writeStack(MONTH, this.stacks({ loader: false, protect: false }).month);
      await this.pulumi.run("month unprotect", ["up", "--stack", MONTH, "--yes"], { env: { COMFYUME_NO_POLICY: "1" } });
      const appId = appHost(this.cloud).id;
      const appBefore = new Map(appSets(this.cloud).map((s) => [s.name, latestManifestKey(this.cloud, s)]));
      await this.pulumi.run("month destroy", ["destroy", "--stack", MONTH, "--yes", "--run-program"]);
      const state = this.cloud.verda.state();
      const trashed = new Set(state.volumes.filter((v) => "deleted_at" in v && !v.is_permanently_deleted).map((v) => v.id));
      const outside = state.meters.filter((m) => m.running && !trashed.has(m.resource_id));
      return [
        ...checkAppBackedUp(this.cloud, appId, appBefore, userFiles, APP_DATA_DIR),
        must(state.container_deployments.length === 0, "the deployments deleted"),
        must(state.secrets.length === 0, "their secrets deleted", state.secrets.join(", ")),
        must(state.volumes.every((v) => "deleted_at" in v), "no volume left"),
        must(state.instances.length === 0, "no instance left"),
        must(state.ssh_keys.length === 2, "idle's SSH keys remain"),
        must(outside.length === 0, "nothing billing outside Verda's trash", outside.map((m) => m.description).join(", ")),
      ];
    });

    const costs = await compareDayCosts(this.cloud, this.stacks({ loader: false, protect: false }), { serverlessBill: replicaCost3h, stackForecast: this.stackForecast }, WORKSHOP_HOURS);
    this.tables.push(costTable(costs, WORKSHOP_HOURS, this.cloud.verda.state().currency));
    // The day-up reference for serverless: a replica's cold start (no instance to provision, nothing to restore).
    const coldStartMs = DEFAULT_TIMING.replicaColdStartMs;
    return {
      tables: this.tables,
      benchmark: { dayUpMs, provisioningMs: coldStartMs, restoreCopyMs: 0, ratio: dayUpMs / coldStartMs, diskMBps: 0, restoreBytes: 0, slowest: slowestSteps(dayUpEvents), timeline: timeline(dayUpEvents) },
    };
  }
}

async function waitUntil(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
