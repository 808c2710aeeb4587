// `npm run rehearse -- --faults`: one day stack on the local simulated cloud, driven through the
// real Pulumi CLI, and one fault at a time injected into the nightly destroy or the next morning's
// up. Each fault: inject → the command → evidence (instance deleted? every user file verified in R2
// by its bytes, or still on its volume?) → clear → retry → evidence. Stacks are shared: the month
// and day stacks are created once; a fault that leaves the instance up only re-runs the destroy,
// and a fresh `up` runs only when the instance is gone. See docs/rehearsal.md ("Faults").
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { startLocalCloud, type LocalCloud } from "../../local-cloud";
import { startTcpGate, type TcpGate } from "../../local-cloud/tcp-gate";
import { sshRun, type SshHost } from "../hosts";
import { pulumiRunner, REPO_ROOT, type PulumiRunner } from "../pulumi-runner";
import { dayStack, idleStack, monthStack, stackFile } from "../stack-files";
import { selectFaults, type Fault } from "./catalogue";
import { FaultContext } from "./context";
import { badObjects, gatherEvidence, hostFailures, onVolume, removeObjects, type UserFile } from "./evidence";
import { errorLines, faultTable, judge, type Attempt, type FaultRow } from "./table";

export interface FaultRehearsalOptions {
  say: (line: string) => void;
  /** Run only the faults whose names contain one of these (all when empty). */
  only: string[];
}

export interface FaultRehearsalResult {
  rows: FaultRow[];
  table: string;
  ok: boolean;
  setupMs: number;
  totalMs: number;
}

const MONTH = "testing-month";
const DAY = "workshop-day";
export const LOG_DIR = path.join(REPO_ROOT, ".comfyume/rehearsal-faults");
// The nightly command, as the README gives it.
// --skip-preview: the engine runs the same steps without planning them twice (the run stays short).
const NIGHT = ["destroy", "--stack", DAY, "--yes", "--run-program", "--skip-preview"];
const MORNING = ["up", "--stack", DAY, "--yes", "--skip-preview"];

export async function rehearseFaults(o: FaultRehearsalOptions): Promise<FaultRehearsalResult> {
  const started = Date.now();
  const faults = selectFaults(o.only);
  // Its own loopback net: the plain rehearsal (127.0.0.x) may run at the same time.
  const cloud = await startLocalCloud({ timing: { orderedMs: 250, provisioningMs: 750 }, speed: 60, loopbackNet: "127.88.0" });
  let gate: TcpGate | undefined;
  let ctx: FaultContext | undefined;
  try {
    o.say(`local cloud in ${cloud.dir}`);
    const s3 = new URL(cloud.s3.endpoint);
    gate = await startTcpGate(s3.hostname, Number(s3.port));
    // Every stack reaches "R2" through the gate, so R2 can go down without losing its data.
    const env: Record<string, string> = { ...cloud.env, COMFYUME_SIM_R2_ENDPOINT: `http://127.0.0.1:${gate.port}` };
    fs.rmSync(LOG_DIR, { recursive: true, force: true });
    const pulumi = pulumiRunner(env.COMFYUME_SIM_PROJECT_DIR, env, LOG_DIR, o.say);
    const run = new FaultRun(cloud, pulumi, env, o.say);
    ctx = await run.setup(gate);
    const setupMs = Date.now() - started;
    o.say(`stacks up in ${(setupMs / 1000).toFixed(0)} s; ${faults.length} fault(s) to inject`);
    const rows: FaultRow[] = [];
    for (const fault of faults) rows.push(await run.row(fault, ctx));
    return { rows, table: faultTable(rows), ok: rows.every((r) => r.problems.length === 0), setupMs, totalMs: Date.now() - started };
  } finally {
    try {
      ctx?.unfillSfs();
    } catch (e) {
      o.say(`cleanup: ${(e as Error).message}`);
    }
    await gate?.close();
    await cloud.close();
  }
}

class SetupError extends Error {}

class FaultRun {
  private files: UserFile[] = [];
  private day = 0;
  /** The last command on the day stack was a successful up. */
  private upToDate = false;
  private ctx?: FaultContext;

  constructor(
    private readonly cloud: LocalCloud,
    private readonly pulumi: PulumiRunner,
    private readonly env: Record<string, string>,
    private readonly say: (line: string) => void,
  ) {}

  private writeStack(stack: string, config: object): void {
    const file = path.join(this.env.COMFYUME_SIM_PROJECT_DIR, "stacks", `Pulumi.${stack}.yaml`);
    fs.writeFileSync(file, stackFile(`fault rehearsal: ${stack}`, config, fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""));
  }

  private async initStack(stack: string, config: object, secrets: Record<string, string>): Promise<void> {
    await this.pulumi.run(`init ${stack}`, ["stack", "init", stack]);
    this.writeStack(stack, config);
    for (const [key, value] of Object.entries(secrets)) {
      await this.pulumi.run(`secret ${key}`, ["config", "set", "--stack", stack, "--secret", key], { stdin: value });
    }
  }

  private liveVolume(type: string): string {
    const v = this.cloud.verda.state().volumes.find((x) => x.type === type && !x.is_os_volume && !("deleted_at" in x));
    if (!v) throw new Error(`no live ${type} volume after the month up`);
    return v.id;
  }

  async setup(gate: TcpGate): Promise<FaultContext> {
    const env = this.env;
    const sshKey = fs.readFileSync(env.COMFYUME_SIM_ADMIN_KEY_FILE, "utf8");
    this.say("▶ idle up, month up (SFS seeded, month scratch), day up");
    await this.initStack("idle", idleStack(env), {
      "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID,
      "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY,
    });
    await this.pulumi.run("idle up", ["up", "--stack", "idle", "--yes", "--skip-preview"]);
    await this.initStack(MONTH, monthStack(env, MONTH, { loader: true, protect: true }), { "comfyume:sshPrivateKey": sshKey });
    await this.pulumi.run("month up (loader)", ["up", "--stack", MONTH, "--yes", "--skip-preview"]);
    this.writeStack(MONTH, monthStack(env, MONTH, { loader: false, protect: true }));
    await this.pulumi.run("month up (loader off)", ["up", "--stack", MONTH, "--yes", "--skip-preview"]);
    // A dead host is given up on after a few dials, not the production 40: the run stays short.
    const day = dayStack(env, DAY, MONTH) as Record<string, unknown>;
    day["comfyume:ssh"] = { port: Number(env.COMFYUME_SIM_SSH_PORT), perDialTimeout: 5, dialErrorLimit: 4 };
    await this.initStack(DAY, day, {
      "comfyume:sshPrivateKey": sshKey,
      "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD,
      "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY,
    });
    this.ctx = new FaultContext(this.cloud, gate, env, DAY, this.liveVolume("NVMe"), this.liveVolume("NVMe_Shared"));
    const up = await this.command("day up", MORNING);
    if (!up.ok) throw new Error(`the first day up failed: ${up.keyLine}; see ${LOG_DIR}`);
    return this.ctx;
  }

  private dayInstances(): string[] {
    return this.cloud.verda.state().instances.filter((i) => i.hostname === `comfyume-${DAY}` && i.status !== "deleting").map((i) => i.id);
  }

  /** Runs a day-stack command; afterwards the context's worker is whatever instance is up. */
  private async command(label: string, args: string[]): Promise<{ ok: boolean; keyLine: string; lines: string[] }> {
    const r = await this.pulumi.run(label, args, { allowFailure: true });
    const output = fs.readFileSync(r.logFile, "utf8");
    const { keyLine, lines } = errorLines(output);
    this.upToDate = r.code === 0 && args[0] === "up";
    const ctx = this.ctx!;
    const live = this.cloud.verda.state().instances.find((i) => i.hostname === `comfyume-${DAY}` && i.status === "running");
    const host = live ? this.cloud.instances().get(live.id) : undefined;
    ctx.worker = live && host ? { id: live.id, host: host.host, port: host.port, hostKey: host.hostKey } : undefined;
    this.say(`  ${r.code === 0 ? "✔" : "✘"} ${label}${r.code === 0 ? "" : `: ${keyLine}`}`);
    return { ok: r.code === 0, keyLine, lines };
  }

  private async attempt(label: string, args: string[], during?: () => Promise<void>): Promise<Attempt> {
    const started = Date.now();
    const before = this.dayInstances();
    const hostRoots = [...this.cloud.instances().values()].map((h) => h.root).concat(this.cloud.mello.root);
    const onVolumeBefore = this.files.filter((f) => onVolume(this.cloud, this.ctx!.scratchVolumeId, f));
    const logMark = Date.now();
    let r: Awaited<ReturnType<FaultRun["command"]>>;
    try {
      r = await this.command(label, args);
    } finally {
      await during?.();
    }
    const after = new Set(this.dayInstances());
    const files = gatherEvidence(this.cloud, this.ctx!.scratchVolumeId, this.files, this.cloud.dir);
    const stillOn = new Set(files.filter((e) => e.onVolume).map((e) => e.file));
    return {
      vanished: onVolumeBefore.filter((f) => !stillOn.has(f)).map((f) => `${f.host}:${f.path}`),
      // What the hosts' own logs say (not what the operator sees): shown as a note, never judged.
      hostLog: r.ok ? [] : hostFailures(hostRoots, logMark),
      ok: r.ok,
      keyLine: r.keyLine,
      errorLines: r.lines,
      deletedInstance: before.some((id) => !after.has(id)),
      files,
      ms: Date.now() - started,
    };
  }

  /** A workshop day: each user adds an input and an output on scratch, and files on mello. */
  private async writeDayFiles(): Promise<void> {
    const ctx = this.ctx!;
    if (!ctx.worker) throw new SetupError("no worker to write today's files on");
    this.day += 1;
    const mello: SshHost = { host: this.cloud.mello.host, port: this.cloud.mello.port, hostKey: this.cloud.mello.hostKey };
    const put = async (host: "worker" | "mello", file: string, bytes: number) => {
      const content = randomBytes(bytes);
      // mello's data directory is under its root (COMFYUME_ROOT); /mnt/scratch is bound into the worker's namespace.
      const at = host === "mello" ? `"$COMFYUME_ROOT"'${file}'` : `'${file}'`;
      await sshRun(this.cloud.dir, this.env.COMFYUME_SIM_ADMIN_KEY_FILE, host === "worker" ? ctx.worker! : mello, `mkdir -p "$(dirname ${at})" && base64 -d > ${at}`, content.toString("base64"));
      this.files.push({ host, path: file, sha256: createHash("sha256").update(content).digest("hex"), bytes });
    };
    for (const user of ["user001", "user002"]) {
      await put("worker", `/mnt/scratch/inputs/${user}/day${this.day}-reference.png`, 24 * 1024);
      await put("worker", `/mnt/scratch/outputs/${user}/day${this.day}-render.mp4`, 384 * 1024);
      await put("mello", `/home/dev/comfyume/data/outputs/${user}/day${this.day}-cut.mp4`, 64 * 1024);
    }
  }

  private async ensureMorning(why: string): Promise<void> {
    if (this.upToDate && this.ctx!.worker) return;
    const up = await this.command(`up before ${why}`, MORNING);
    if (!up.ok || !this.ctx!.worker) throw new SetupError(`the morning up before the fault failed: ${up.keyLine}`);
  }

  async row(f: Fault, ctx: FaultContext): Promise<FaultRow> {
    const row: FaultRow = { fault: f.name, phase: f.phase, notes: [], problems: [], ms: 0 };
    const started = Date.now();
    const slug = f.name.replace(/[^A-Za-z0-9]+/g, "-");
    this.say(`▶ fault: ${f.name} (${f.phase})`);
    try {
      await this.ensureMorning(slug);
      await this.writeDayFiles();
      if (f.phase === "nightly destroy") {
        await f.inject(ctx);
        row.faulted = await this.attempt(`destroy under ${slug}`, NIGHT, f.during?.(ctx));
        await f.clear(ctx);
        if (!row.faulted.ok) {
          if (f.beforeRetry) row.notes.push(...(await f.beforeRetry(ctx)));
          row.retry = await this.attempt(`destroy retry after ${slug}`, NIGHT);
        }
      } else {
        if (f.beforeNight) await f.inject(ctx);
        const night = await this.command(`destroy before ${slug}`, NIGHT);
        if (!night.ok) throw new SetupError(`the night before failed: ${night.keyLine}`);
        if (!f.beforeNight) await f.inject(ctx);
        row.faulted = await this.attempt(`up under ${slug}`, MORNING);
        await f.clear(ctx);
        if (!row.faulted.ok) row.retry = await this.attempt(`up retry after ${slug}`, MORNING);
      }
    } catch (e) {
      row.notes.push(`${e instanceof SetupError ? "setup" : "harness"}: ${(e as Error).message}`);
      if (!(e instanceof SetupError)) this.say(`  harness error: ${(e as Error).stack ?? String(e)}`);
      await (async () => f.clear(ctx))().catch(() => undefined);
    }
    row.notes.push(...ctx.notes.splice(0));
    row.problems = judge(row, f.cause, f.forbidden);
    row.problems.push(...ctx.misfires.splice(0));
    // The row is judged only on evidence it really gathered.
    if (row.faulted) row.problems.push(...row.notes.filter((n) => n.startsWith("harness:")));
    row.ms = Date.now() - started;
    this.forgetLost(row);
    this.startClean(row);
    this.say(`${row.problems.length ? "✘ FAIL" : "✔ ok"} ${f.name} in ${(row.ms / 1000).toFixed(0)} s${[...row.problems, ...row.notes].map((p) => `\n      ${p}`).join("")}`);
    return row;
  }

  /**
   * Each fault starts from a clean R2: a bad object left behind (a truncated upload, a corrupted
   * object the scripts did not heal) is reported in this row, then removed so it cannot fail the next.
   */
  private startClean(row: FaultRow): void {
    const bad = badObjects(this.cloud);
    if (!bad.length) return;
    row.notes.push(`R2 held ${bad.length} object(s) whose bytes do not match their key (${bad.slice(0, 2).join(", ")}); the harness removed them before the next fault`);
    removeObjects(this.cloud, bad);
  }

  /** A lost file is reported by the row that lost it; later rows track what still exists. */
  private forgetLost(row: FaultRow): void {
    const last = row.retry ?? row.faulted;
    if (!last) return;
    const lost = new Set(last.files.filter((e) => !e.inR2 && !e.onVolume).map((e) => e.file));
    if (lost.size) this.files = this.files.filter((f) => !lost.has(f));
  }
}
