// `npm run rehearse`: the whole workshop cycle on the local simulated cloud, driven through the
// real Pulumi CLI: idle up → month up (SFS seeded from R2) → day up (restored) → user activity →
// day destroy (verified backup) → day up again (yesterday's work back, byte for byte) → day
// destroy → month destroy → idle only. Every check that fails makes the run fail.
import * as fs from "node:fs";
import * as path from "node:path";
import { startLocalCloud, type LocalCloud } from "../local-cloud";
import { rehearseAdopt } from "./adopt";
import { melloDataDir, simulateUsers, verifyInR2, verifyOnHosts, verifyWork, type WorkFile } from "./activity";
import { APP_BACKUP_SET, appHost, appIdentity, appSets, checkAppBackedUp, checkAppHostUp, checkWorkerUsedAppRedis } from "./app-host";
import { measureDiskBytesPerSecond, restoreBytes } from "./disk-speed";
import { slowestSteps, type StepTime, timeline, type TimelineRow } from "./event-log";
import { sshRun, type SshHost } from "./hosts";
import { pulumiRunner, REPO_ROOT, type PulumiRunner } from "./pulumi-runner";
import { latestManifest, latestManifestKey, manifestProblems, manifestTable, nightlySets, type BackupSet, type SetManifest } from "./r2-readback";
import { phaseTable, type PhaseRecord } from "./report";
import { APP_DATA_DIR, dayStack, idleStack, monthStack, type AppOnVerda } from "./stack-files";
import { rehearseServerless } from "./serverless";
import { initStack, runPhase, writeStack } from "./phase";
import { FIRST_BOOT_LOG } from "../../components/toolchain";

export interface RehearsalOptions {
  /** Simulated provisioning (ordered + provisioning) in ms. */
  provisioningMs: number;
  /** Billing clock speed (simulated ms per real ms). */
  speed: number;
  say: (line: string) => void;
  /** The app on a Verda CPU instance the month owns (rehearse --app-on-verda); default: the app on mello. */
  appOnVerda?: boolean;
  /** GPU work on serverless deployments, the app on Verda (rehearse --serverless; sim/rehearsal/serverless.ts). */
  serverless?: boolean;
  /** Adopt resources made out of band (rehearse --adopt; sim/rehearsal/adopt.ts). */
  adopt?: boolean;
}

export interface RehearsalResult {
  phases: PhaseRecord[];
  /** The phase table, then each nightly destroy's backup sets (entries and bytes per set). */
  table: string;
  benchmark: {
    dayUpMs: number;
    provisioningMs: number;
    restoreCopyMs: number;
    ratio: number;
    diskMBps: number;
    restoreBytes: number;
    /** The day up's slowest resource steps (engine event log). */
    slowest: StepTime[];
    /** The day up's resources, start and end (whole seconds), and the update's duration without the preview. */
    timeline: { rows: TimelineRow[]; updateS?: number };
    /** A second `up` of the same day with nothing to change, in ms: what the CLI, the policy pack, the program and the providers' checks take alone. */
    floorMs?: number;
    /** The worker's first-boot log lines that time its installs (apt-get update, each install). */
    firstBoot?: string[];
  };
  ok: boolean;
}

const MONTH = "testing-month";
const DAY = "workshop-day";

const must = (cond: boolean, what: string) => {
  if (!cond) throw new Error(what);
  return what;
};

export async function rehearse(o: RehearsalOptions): Promise<RehearsalResult> {
  if (o.serverless) return rehearseServerless(o);
  if (o.adopt) return rehearseAdopt(o);
  const orderedMs = Math.round(o.provisioningMs / 4);
  // COMFYUME_REHEARSAL_NET (e.g. 127.0.108): another loopback net, so a second rehearsal on this machine does not collide.
  const loopbackNet = process.env.COMFYUME_REHEARSAL_NET || undefined;
  const cloud = await startLocalCloud({
    timing: { orderedMs, provisioningMs: o.provisioningMs - orderedMs },
    speed: o.speed,
    loopbackNet,
    // The app host restores its own identity: a second backup set in the cache bucket.
    ...(o.appOnVerda ? { workerBackupSets: ["comfyume-workshop-day", APP_BACKUP_SET] } : {}),
  });
  o.say(`local cloud up in ${(cloud.startupMs / 1000).toFixed(1)} s: Verda simulator, mello, S3 seeded with ${cloud.seed.objects} objects (${(cloud.seed.dataBytes / 1048576).toFixed(1)} MiB)`);
  const phases: PhaseRecord[] = [];
  try {
    const logDir = path.join(REPO_ROOT, ".comfyume/rehearsal");
    fs.rmSync(logDir, { recursive: true, force: true });
    const projectDir = cloud.env.COMFYUME_SIM_PROJECT_DIR;
    const pulumi = pulumiRunner(projectDir, cloud.env, logDir, o.say);
    const ctx = new Context(cloud, pulumi, projectDir, phases, o.say, o.appOnVerda ? appIdentity(cloud) : undefined);
    const benchmark = await ctx.cycle(o.provisioningMs);
    const table = [phaseTable(phases, cloud.verda.state().currency), ...ctx.setTables()].join("\n\n");
    return { phases, table, benchmark, ok: phases.every((p) => p.ok) };
  } finally {
    await cloud.close();
  }
}

class Context {
  private readonly keyFile: string;
  private readonly mello: SshHost;
  private work: WorkFile[] = [];
  private readonly sets: BackupSet[];
  /** Each nightly destroy's sets as read back from R2 afterwards. */
  private readonly backedUp: { phase: string; manifests: SetManifest[] }[] = [];

  constructor(
    private readonly cloud: LocalCloud,
    private readonly pulumi: PulumiRunner,
    private readonly projectDir: string,
    private readonly phases: PhaseRecord[],
    private readonly say: (line: string) => void,
    /** Set: the app runs on a Verda CPU instance the month owns, and the users' files live there. */
    private readonly app?: AppOnVerda,
  ) {
    this.keyFile = cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE;
    this.mello = { host: cloud.mello.host, port: cloud.mello.port, hostKey: cloud.mello.hostKey };
    // With the app on Verda the nightly destroy also backs up the app host's users' files (sets app/<dir>).
    // With the app on the app host, mello holds no users' files and the day declares no hook there.
    this.sets = app ? [...nightlySets(cloud, []), ...appSets(cloud)] : nightlySets(cloud);
  }

  /** The report's tables of backup sets, one per nightly destroy. */
  setTables(): string[] {
    return this.backedUp.map(({ phase, manifests }) => `R2 after ${phase}: each set's newest manifest, read back from the S3 endpoint\n${manifestTable(manifests)}`);
  }

  /**
   * After a nightly destroy: every set has a new, non-empty manifest in R2 (read back, not counted
   * from a listing of events); a missing, empty or stale one fails the phase, naming the set.
   */
  private checkSets(phase: string, before: Map<string, string | undefined>): string {
    const manifests = this.sets.map((set) => latestManifest(this.cloud, set));
    this.backedUp.push({ phase, manifests });
    const problems = manifestProblems(manifests, before);
    must(problems.length === 0, `every backup set has a new, non-empty manifest in R2: ${problems.join("; ")}`);
    const entries = manifests.reduce((n, m) => n + m.entries.length, 0);
    const bytes = manifests.reduce((n, m) => n + m.bytes, 0);
    return `${manifests.length} sets backed up, each with a new non-empty manifest in R2 (${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB)`;
  }

  /** Times a phase, its cloud waits and simulated cost; a failed check is recorded, then rethrown. */
  private phase(name: string, body: () => Promise<string[]>): Promise<void> {
    return runPhase(this.cloud, this.phases, this.say, name, body);
  }

  private writeStack(stack: string, config: object): void {
    writeStack(this.projectDir, "rehearsal", stack, config);
  }

  private initStack(stack: string, config: object, secrets: Record<string, string>): Promise<void> {
    return initStack(this.pulumi, this.projectDir, "rehearsal", stack, config, secrets);
  }

  private worker(): SshHost & { id: string } {
    const live = this.cloud.verda.state().instances.filter((i) => i.hostname === `comfyume-${DAY}` && i.status === "running");
    must(live.length === 1, `exactly one running ${DAY} instance (found ${live.length})`);
    const host = this.cloud.instances().get(live[0].id);
    if (!host) throw new Error(`no SSH host for instance ${live[0].id}`);
    return { id: live[0].id, host: host.host, port: host.port, hostKey: host.hostKey };
  }

  /** Where the users' own files live: mello's data directory (as the day stack configures backup-mello), or the app host's. */
  private melloData(): string {
    return this.app ? APP_DATA_DIR : melloDataDir(dayStack(this.cloud.env, DAY, MONTH));
  }

  /** The host with the users' own files: mello, or the app host. */
  private userFilesHost(): SshHost {
    return this.app ? appHost(this.cloud) : this.mello;
  }

  /** The month stack's settings (with the app host when rehearsing --app-on-verda). */
  private month(opts: { loader: boolean; protect: boolean }): object {
    return monthStack(this.cloud.env, MONTH, { ...opts, app: this.app });
  }

  private liveVolumes() {
    return this.cloud.verda.state().volumes.filter((v) => !("deleted_at" in v));
  }

  private trashOnly(state: ReturnType<LocalCloud["verda"]["state"]>): string {
    const trashed = new Set(state.volumes.filter((v) => "deleted_at" in v && !v.is_permanently_deleted).map((v) => v.id));
    const billing = state.meters.filter((m) => m.running);
    const outside = billing.filter((m) => !trashed.has(m.resource_id));
    must(outside.length === 0, `nothing billing outside the trash (found ${outside.map((m) => m.description).join(", ")})`);
    const perHour = billing.reduce((n, m) => n + m.price_per_hour, 0);
    return `nothing billing but ${billing.length} volume(s) in Verda's trash (${perHour.toFixed(4)}/h until purged)`;
  }

  async cycle(provisioningMs: number): Promise<RehearsalResult["benchmark"]> {
    const env = this.cloud.env;
    const sshKey = fs.readFileSync(this.keyFile, "utf8");
    await this.phase("idle up", async () => {
      await this.initStack("idle", idleStack(env), {
        "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID,
        "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY,
      });
      await this.pulumi.run("idle up", ["up", "--stack", "idle", "--yes"]);
      return [must(this.cloud.verda.state().ssh_keys.length === 2, "2 Verda SSH keys"), must(this.cloud.verda.state().instances.length === 0, "no instance")];
    });

    await this.phase(`${MONTH} up (seeded)`, async () => {
      const appSecrets: Record<string, string> = this.app ? { "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD, "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY } : {};
      await this.initStack(MONTH, this.month({ loader: true, protect: true }), { "comfyume:sshPrivateKey": sshKey, ...appSecrets });
      await this.pulumi.run("month up (loader)", ["up", "--stack", MONTH, "--yes"]);
      const sfs = this.liveVolumes().find((v) => v.type === "NVMe_Shared");
      if (!sfs) throw new Error("an SFS exists");
      const models = fs.readdirSync(path.join(this.cloud.sfsDir(sfs.id), "models"), { recursive: true }).length;
      must(models > 0, "SFS holds the models");
      this.writeStack(MONTH, this.month({ loader: false, protect: true }));
      await this.pulumi.run("month up (loader off)", ["up", "--stack", MONTH, "--yes"]);
      const seeded = `SFS seeded from R2 (${models} model entries, manifest checked by seed-sfs)`;
      if (!this.app) return [seeded, must(this.cloud.verda.state().instances.length === 0, "loader instance deleted")];
      const apps = this.cloud.verda.state().instances;
      must(apps.length === 1 && apps[0].id === appHost(this.cloud).id, "loader instance deleted, only the app host left");
      return [seeded, "loader instance deleted, only the app host left", ...(await checkAppHostUp(this.cloud))];
    });

    const daySecrets = {
      "comfyume:sshPrivateKey": sshKey,
      "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD,
      "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY,
    };
    let dayUpMs = 0;
    let restoreSourceBytes = 0;
    let firstBoot: string[] = [];
    const dayUpEvents = path.join(this.cloud.dir, "day-up.events.jsonl");
    await this.phase(`${DAY} up (restored)`, async () => {
      await this.initStack(DAY, dayStack(env, DAY, MONTH, Boolean(this.app)), daySecrets);
      const started = Date.now();
      // --json streams the engine's events (with timestamps): the benchmark's breakdown comes from them.
      const up = await this.pulumi.run("day up", ["up", "--stack", DAY, "--yes", "--json"]);
      fs.writeFileSync(dayUpEvents, up.stdout);
      dayUpMs = Date.now() - started;
      const w = this.worker();
      firstBoot = await firstBootTimes(this.cloud.dir, this.keyFile, w);
      const sfs = this.liveVolumes().find((v) => v.type === "NVMe_Shared");
      restoreSourceBytes = sfs ? restoreBytes(this.cloud.sfsDir(sfs.id)) : 0;
      if (this.app) return [`instance ${w.id.slice(0, 8)} running`, "restore-instance health checks passed (ComfyUI, Redis)", await checkWorkerUsedAppRedis(this.cloud, w.id)];
      return [`instance ${w.id.slice(0, 8)} running`, "restore-instance health checks passed (ComfyUI, Redis over the tailnet)"];
    });

    // The same day again with nothing to change: the part of the day up that no host work can remove.
    let floorMs = 0;
    await this.phase(`${DAY} up, nothing to change`, async () => {
      const started = Date.now();
      await this.pulumi.run("day up, nothing to change", ["up", "--stack", DAY, "--yes", "--skip-preview", "--expect-no-changes"]);
      floorMs = Date.now() - started;
      return [`a second 'pulumi up' of the running day changed nothing (--expect-no-changes) in ${(floorMs / 1000).toFixed(1)} s`];
    });

    await this.phase("user activity", async () => {
      this.work = await simulateUsers(this.cloud.dir, this.keyFile, this.worker(), this.userFilesHost(), 3, this.melloData(), this.app ? "app" : undefined);
      const bytes = this.work.reduce((n, f) => n + f.bytes, 0);
      return [`${this.work.length} files (${(bytes / 1024).toFixed(0)} KiB) on scratch and ${this.app ? "the app host" : "mello"}`];
    });

    const teardown = async (label: string) =>
      this.phase(label, async () => {
        const before = new Map(this.sets.map((set) => [set.name, latestManifestKey(this.cloud, set)]));
        const id = this.worker().id;
        await this.pulumi.run(label, ["destroy", "--stack", DAY, "--yes", "--run-program"]);
        const state = this.cloud.verda.state();
        return [
          this.checkSets(label, before),
          must(!state.instances.some((i) => i.id === id), "instance deleted after the backup"),
          this.app
            ? must(this.liveVolumes().filter((v) => v.is_os_volume).length === 1, "its OS volume deleted (the app host's kept)")
            : must(!this.liveVolumes().some((v) => v.is_os_volume), "its OS volume deleted"),
          ...(this.app ? [must(appHost(this.cloud).id !== "", "app host kept running")] : []),
          must(this.liveVolumes().filter((v) => v.type === "NVMe_Shared").length === 1, "SFS kept"),
          must(this.liveVolumes().filter((v) => v.type === "NVMe" && !v.is_os_volume).length === 1, "scratch kept"),
        ];
      });
    await teardown(`${DAY} destroy`);

    await this.phase(`${DAY} up again`, async () => {
      await this.pulumi.run("day up again", ["up", "--stack", DAY, "--yes"]);
      if (this.app) {
        // The app host's files never left it; the worker's came back from the scratch; both are in R2 from the nightly destroy.
        const problems = [
          ...(await verifyOnHosts(this.cloud.dir, this.keyFile, this.worker(), this.userFilesHost(), this.work)),
          ...verifyInR2(this.cloud, this.work, this.melloData()),
        ];
        must(problems.length === 0, `yesterday's ${this.work.length} files back byte for byte${problems.length ? `: ${problems.join(", ")}` : ""}`);
        return [`yesterday's ${this.work.length} files back byte for byte (SHA-256) on the new worker's scratch and on the app host, and in R2 (newest manifests, objects read back)`];
      }
      const problems = await verifyWork(this.cloud, this.keyFile, this.worker(), this.mello, this.work, this.melloData());
      must(problems.length === 0, `yesterday's ${this.work.length} files back byte for byte${problems.length ? `: ${problems.join(", ")}` : ""}`);
      return [`yesterday's ${this.work.length} files back byte for byte (SHA-256) on the new worker's scratch and on mello, and in R2 (newest manifests, objects read back)`];
    });
    await teardown(`${DAY} destroy again`);

    await this.phase(`${MONTH} destroy`, async () => {
      this.writeStack(MONTH, this.month({ loader: false, protect: false }));
      // The end of a period is the one deliberate exception to the "SFS protected" policy.
      await this.pulumi.run("month unprotect", ["up", "--stack", MONTH, "--yes"], { env: { COMFYUME_NO_POLICY: "1" } });
      const appId = this.app ? appHost(this.cloud).id : undefined;
      const appBefore = new Map(this.app ? appSets(this.cloud).map((set) => [set.name, latestManifestKey(this.cloud, set)]) : []);
      await this.pulumi.run("month destroy", ["destroy", "--stack", MONTH, "--yes", "--run-program"]);
      const state = this.cloud.verda.state();
      return [
        ...(appId ? checkAppBackedUp(this.cloud, appId, appBefore, this.work, this.melloData()) : []),
        must(this.liveVolumes().length === 0, "no volume left"),
        must(state.instances.length === 0, "no instance left"),
        must(state.ssh_keys.length === 2, "idle's SSH keys remain"),
        // Deleted volumes go to Verda's trash (recoverable, billed until purged): the only billing left.
        this.trashOnly(state),
      ];
    });

    const diskBytesPerSecond = measureDiskBytesPerSecond(this.cloud.dir);
    const bytes = restoreSourceBytes;
    const restoreCopyMs = (bytes / diskBytesPerSecond) * 1000;
    return {
      dayUpMs,
      provisioningMs,
      restoreCopyMs,
      ratio: dayUpMs / (provisioningMs + restoreCopyMs),
      diskMBps: diskBytesPerSecond / 1e6,
      restoreBytes: bytes,
      slowest: slowestSteps(dayUpEvents),
      timeline: timeline(dayUpEvents),
      floorMs,
      firstBoot,
    };
  }

}

/** The timing lines of the worker's first-boot install log ("apt-get update in 0.3s", "installed nfs-common in 3.1s", ...). */
async function firstBootTimes(dir: string, keyFile: string, worker: SshHost): Promise<string[]> {
  // A worker whose identity is pinned installs nfs-common in its startup script and keeps no such log: no lines.
  const log = await sshRun(dir, keyFile, worker, `cat ${FIRST_BOOT_LOG} 2>/dev/null || true`);
  return log
    .split("\n")
    .filter((l) => / in [0-9.]+s$/.test(l))
    .map((l) => l.replace(/^comfyume-first-boot: /, ""));
}
