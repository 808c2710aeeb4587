// The worker's restore chain: upload the host scripts -> mount-sfs (after toolchain bootstrap --pre-mount: nfs-common,
// which the first-boot script normally installed already) -> toolchain bootstrap (rclone, jq, ...: the first
// boot normally installed them too, else from the SFS cache), with prepare-scratch beside them -> restore-instance
// (from the SFS cache) -> read back its step table, and install the hourly backup cron.
// A replaced instance starts empty: everything here runs again (the instance id is a trigger).
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand, type RemoteFiles } from "../infra/remote";
import { HostScripts } from "./host-scripts";
import { chain, commandDeadline, connectionArgs, repeated, scriptRunner, secretStdin, shellQuote, type SshTarget } from "./remote";
import { BOOTSTRAP_FILES, bootstrapCommand, toolchainCacheDir, toolchainCommand } from "./toolchain";
import type { BucketNames } from "./backups";

/** Every script the instance needs, for the restore and for the backup hooks. */
export const INSTANCE_SCRIPTS = [
  "mount-sfs.sh",
  "prepare-scratch.sh",
  "restore-instance.sh",
  "install-backup-cron.sh",
  "backup-instance.sh",
  "backup-to-r2.sh",
  "backup-mello.sh",
  ...BOOTSTRAP_FILES,
];

/** The R2 fallback's bucket layout (config `seed.layout`, `seed.workerImageName`): flat reads the workshop's dated tarballs. */
export interface FlatRestore {
  /** manifest (ours; the default) or flat (restore-instance.sh --layout flat runs seed-flat.sh). */
  layout?: "manifest" | "flat";
  /** flat: the <image> of <image>-<YYYY-MM-DD>.tar.gz when the worker bucket holds several. */
  workerImageName?: string;
}

/** restore-instance.sh arguments for the flat layout; none for manifests (that command line is as it always was). */
export function flatRestoreArgs(r: FlatRestore, workerBucket: string): [string, string][] {
  if (r.layout !== "flat") return [];
  return [["--layout", "flat"], ...(r.workerImageName ? [["--worker-image-name", r.workerImageName] as [string, string]] : []), ["--worker-bucket", workerBucket]];
}

export interface WorkerRestoreArgs {
  /** SSH to the instance, host key pinned. */
  target: SshTarget;
  /** The instance's id: when it changes (a new machine), every step runs again. */
  instanceId: pulumi.Input<string>;
  /** The scratch volume prepare-scratch mounts (found by its id). */
  scratchVolumeId: pulumi.Input<string>;
  /**
   * The scratch outlives the instance (month-scoped): it may be formatted on its first day only. prepare-scratch
   * records that day in a marker on the SFS (which outlives every instance) and from then on never formats it,
   * refusing a blank or unreadable device (--formatted-marker; docs/host-scripts.md).
   */
  scratchOutlivesInstance: boolean;
  /** `host:/path` of the month's SFS for mount-sfs. */
  sfsMountTarget: pulumi.Input<string>;
  /** The month's SFS id: mount-sfs refuses an SFS whose identity marker names another (--sfs-id). */
  sfsVolumeId: pulumi.Input<string>;
  /** Whether the worker's identity is pinned from config (else restore leaves the host keys alone). */
  identityPinned: boolean;
  /** Where the SFS and the scratch are mounted, where the scripts go, where restore logs. */
  paths: { sfsMount: string; scratchMount: string; scriptsDir: string; restoreLog: string };
  /** R2 for the restore's cache fallback (keys go on stdin). */
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  /** Secrets restore-instance needs (stdin only). */
  secrets: { redisPassword: pulumi.Input<string>; tailscaleAuthKey: pulumi.Input<string> };
  /** restore-instance settings (config `restore`). */
  restore: { expectedTailscaleIp: string; redisHost: string; redisPort: number; healthTimeoutSeconds: number; skip: string[] } & FlatRestore;
  /** The backup set (SFS cache) to restore from and back up to; the hourly cron's schedule. */
  backup: { setName: string; cronSchedule: string };
  /** Non-secret environment for every script (test roots, shims). */
  hostEnv: Record<string, string>;
  /** Per-script deadlines. */
  timeouts: { mountSeconds: number; restoreSeconds: number };
  /** What must exist before the first upload: the instance and its scratch. */
  after: pulumi.Input<pulumi.Resource>[];
  /** The instance is allowed on the SFS (Verda's share settings): what the mount, and only the mount, waits for. */
  sfsShared: pulumi.Input<pulumi.Resource>[];
  /** The GpuWorker these children belonged to before the split (aliases keep their URNs). */
  formerParent?: pulumi.Resource;
}

export class WorkerRestore extends pulumi.ComponentResource {
  /** The scripts upload (the backup hooks run these scripts too). */
  public readonly scriptFiles: RemoteFiles;
  /** The toolchain bootstrap from the SFS cache; its stdout is the bootstrap's result line. */
  public readonly toolchain: RemoteCommand;
  public readonly restore: RemoteCommand;
  public readonly backupCron: RemoteCommand;
  /** restore-instance's per-step timing table (no secrets). */
  public readonly restoreReport: pulumi.Output<string>;

  constructor(name: string, args: WorkerRestoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:verda:WorkerRestore", name, {}, opts);
    const a = args;
    const moved = (): pulumi.CustomResourceOptions => ({
      parent: this,
      ...(a.formerParent ? { aliases: [{ parent: a.formerParent }] } : {}),
    });
    const connection = connectionArgs(a.target);
    const perInstance = [a.instanceId];
    const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);

    const scripts = new HostScripts(
      `${name}-scripts`,
      { target: a.target, remoteDir: a.paths.scriptsDir, scripts: [...INSTANCE_SCRIPTS, ...(a.restore.layout === "flat" ? ["seed-flat.sh"] : [])], triggers: perInstance },
      { ...moved(), dependsOn: a.after },
    );
    this.scriptFiles = scripts.files;

    // First on the host: what mounting the SFS needs (nfs-common: the fast path when the first boot installed it), then
    // the mount, in one command (one step less on the way to the restore). The mount target is an input: when the SFS
    // pseudo path changes, this re-runs and re-mounts.
    const mountSfs = toolchainCommand(
      `${name}-mount-sfs`,
      {
        connection,
        triggers: perInstance,
        bootstrapRuns: 1,
        otherSeconds: [a.timeouts.mountSeconds],
        commands: [
          bootstrapCommand({ scriptsDir: a.paths.scriptsDir, env: a.hostEnv, preMount: true }),
          pulumi
            .all([a.sfsMountTarget, a.sfsVolumeId])
            .apply(([t, id]) => run("mount-sfs.sh", [["--target", t], ["--mount-point", a.paths.sfsMount], ["--sfs-id", id]], a.timeouts.mountSeconds)),
        ],
      },
      { ...moved(), dependsOn: [scripts.files, ...a.sfsShared] },
    );
    // The rest of the toolchain (rclone, jq, ...): waits for the first boot's install of it, else from the month's cache on the SFS.
    this.toolchain = toolchainCommand(
      `${name}-toolchain`,
      { connection, triggers: perInstance, bootstrapRuns: 1, commands: [bootstrapCommand({ scriptsDir: a.paths.scriptsDir, env: a.hostEnv, cacheDir: toolchainCacheDir(a.paths.sfsMount) })] },
      { ...moved(), dependsOn: [mountSfs] },
    );
    // prepare-scratch uses only the image's own tools (util-linux, e2fsprogs, coreutils; it names any missing one), so it
    // runs beside the bootstrap and the mount instead of after them. Only a month-scoped scratch reads its
    // formatted-marker on the SFS, and then waits for the mount. (Both write fstab: fstab_set_entry_locked.)
    const prepareScratch = new RemoteCommand(
      `${name}-prepare-scratch`,
      {
        connection,
        triggers: perInstance,
        create: pulumi.output(a.scratchVolumeId).apply((id) =>
          run("prepare-scratch.sh", [["--volume-id", id], ["--mount-point", a.paths.scratchMount], ...(a.scratchOutlivesInstance ? [["--formatted-marker", formattedMarker(a.paths.sfsMount, id)] as [string, string]] : [])], a.timeouts.mountSeconds),
        ),
        timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
      },
      { ...moved(), dependsOn: a.scratchOutlivesInstance ? [mountSfs] : [scripts.files] },
    );

    // restore-instance logs to RESTORE_LOG: the configured path, which the report reads back. The
    // setting wins over a RESTORE_LOG in hostEnv, or the report would read another file.
    const runRestore = scriptRunner(a.paths.scriptsDir, { ...a.hostEnv, RESTORE_LOG: a.paths.restoreLog });
    const restoreScript = pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) =>
      withFreshLog(
        runRestore(
          "restore-instance.sh",
          [
            ["--sfs", a.paths.sfsMount],
            ["--name", a.backup.setName],
            ["--expected-tailscale-ip", a.restore.expectedTailscaleIp],
            ["--redis-host", a.restore.redisHost],
            ["--redis-port", String(a.restore.redisPort)],
            ["--health-timeout", String(a.restore.healthTimeoutSeconds)],
            ["--r2-endpoint", endpoint],
            ["--cache-bucket", buckets.cache],
            ...flatRestoreArgs(a.restore, buckets.workerContainer),
            // First-contact mode pins the instance's own key: restoring another identity would break it.
            ...(a.identityPinned ? [] : [["--skip", "ssh-host-keys"] as [string, string]]),
            ...repeated("--skip", a.restore.skip),
          ],
          a.timeouts.restoreSeconds,
          true,
        ),
        a.paths.restoreLog,
      ),
    );
    this.restore = new RemoteCommand(
      `${name}-restore`,
      {
        connection,
        triggers: perInstance,
        create: restoreScript,
        stdin: secretStdin({
          TAILSCALE_AUTH_KEY: a.secrets.tailscaleAuthKey,
          REDIS_PASSWORD: a.secrets.redisPassword,
          R2_ACCESS_KEY_ID: a.r2.accessKeyId,
          R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey,
        }),
        logging: "none",
        timeoutSeconds: commandDeadline(a.timeouts.restoreSeconds),
      },
      { ...moved(), dependsOn: [prepareScratch, this.toolchain], additionalSecretOutputs: ["stdout", "stderr"] },
    );
    const report = new RemoteCommand(
      `${name}-restore-report`,
      {
        connection,
        // The summary table restore-instance prints last (step, seconds, result): no secrets.
        create: `sed -n '/^STEP /,$p' ${shellQuote(a.paths.restoreLog)}`,
        // Re-read whenever restore ran again (a new instance or a changed restore command); the
        // triggers stay non-secret so the report is a plain output.
        triggers: [a.instanceId, restoreScript],
        timeoutSeconds: 60,
      },
      { ...moved(), dependsOn: [this.restore] },
    );
    this.restoreReport = report.stdout;
    this.backupCron = new RemoteCommand(
      `${name}-backup-cron`,
      {
        connection,
        triggers: perInstance,
        create: run(
          "install-backup-cron.sh",
          [["--schedule", a.backup.cronSchedule], "--", ["--name", a.backup.setName], ["--sfs", a.paths.sfsMount]],
          a.timeouts.mountSeconds,
        ),
        timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
      },
      { ...moved(), dependsOn: [this.restore] },
    );

    this.registerOutputs({ restoreReport: this.restoreReport });
  }
}

/**
 * Empties `log` before running `cmd`, which appends its log lines and step table there itself
 * (RESTORE_LOG): the file then holds the last run only, so the report shows one table, and it
 * survives a dropped connection. stderr still streams to the command; the exit code is cmd's.
 */
function withFreshLog(cmd: string, log: string): string {
  const l = shellQuote(log);
  return chain([`mkdir -p "$(dirname ${l})"`, `: >${l}`, cmd]);
}

/** Where prepare-scratch records that a month-scoped scratch was formatted (on the SFS, per volume). */
export function formattedMarker(sfsMount: string, scratchVolumeId: string): string {
  return `${sfsMount}/.comfyume/scratch-formatted/${scratchVolumeId}`;
}
