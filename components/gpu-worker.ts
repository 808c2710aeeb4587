// The day's worker: a Verda instance attached to the month's SFS and a scratch volume, restored from
// the SFS cache by the host scripts, with backup hooks that must succeed before it can go. Three
// parts, each in its own file:
//   WorkerInstance     (worker-instance.ts)     scratch volume, first-boot script, instance, host key
//   WorkerRestore      (worker-restore.ts)      scripts upload -> mount-sfs -> prepare-scratch -> restore -> report, backup cron
//   WorkerBackupHooks  (worker-backup-hooks.ts) backup-before-delete on the instance and on mello
//
// The parts carry this component's name, so their children keep the names they had when this class
// declared them itself (worker-instance, worker-backup-before-delete, ...); `aliases` map the old URNs
// (parent: this GpuWorker) to the new parents, so an existing stack sees no replacement.
import * as pulumi from "@pulumi/pulumi";
import { WorkerBackupHooks } from "./worker-backup-hooks";
import { WorkerInstance, type ScratchArgs, type WorkerMachineSettings } from "./worker-instance";
import { WorkerRestore, type FlatRestore } from "./worker-restore";
import type { SshTarget } from "./remote";
import type { BucketNames } from "./backups";

export type { ScratchArgs } from "./worker-instance";

export interface GpuWorkerArgs {
  /** What to deploy (type, image, hostname, location, contract, OS disk, SSH keys). */
  instance: WorkerMachineSettings;
  /** The worker's long-lived host key; unset = first-contact pinning (see host-identity.ts). */
  hostPublicKey?: string;
  /** The month's SFS: its id (attached at creation) and `host:/path` mount target. */
  sfs: { volumeId: pulumi.Input<string>; mountTarget: pulumi.Input<string> };
  /** A fresh day-scoped scratch, or the month's scratch volume. */
  scratch: ScratchArgs;
  /** SSH to the instance (user, port, key, dial limits). */
  ssh: Omit<SshTarget, "host" | "hostKey">;
  /** SSH to mello, host key pinned; none when the app (and its users' files) runs on the month's app host. */
  mello?: SshTarget;
  /** R2 endpoint, keys (stdin only) and bucket names. */
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  /** Secrets restore-instance needs (stdin only). */
  secrets: { redisPassword: pulumi.Input<string>; tailscaleAuthKey: pulumi.Input<string> };
  /** restore-instance settings (config `restore`). */
  restore: { expectedTailscaleIp: string; redisHost: string; redisPort: number; healthTimeoutSeconds: number; skip: string[] } & FlatRestore;
  /** Mount points, script directories (instance, mello) and the restore log. */
  paths: { sfsMount: string; scratchMount: string; scriptsDir: string; melloScriptsDir: string; restoreLog: string };
  /**
   * The backup set in the SFS cache, the hourly cron's schedule, and the nightly backups' shrink check:
   * `shrinkTolerance` (0..1; a set below (1-F) x its last verified backup fails) and `acceptShrink` (sets
   * the operator confirmed). Unset = the scripts' defaults (0.5, none).
   */
  backup: { setName: string; cronSchedule: string; shrinkTolerance?: number; acceptShrink?: string[] };
  /** Non-secret environment for the instance's scripts. */
  hostEnv: Record<string, string>;
  /** Non-secret environment for mello's scripts. */
  melloHostEnv: Record<string, string>;
  /** SSH address to use instead of the instance IP (loopback test hosts). */
  sshHostOverride?: string;
  /** Per-script deadlines and how long first contact keeps dialing. */
  timeouts: { mountSeconds: number; restoreSeconds: number; backupSeconds: number; hostKeyScanSeconds: number };
}

export class GpuWorker extends pulumi.ComponentResource {
  public readonly instanceId: pulumi.Output<string>;
  public readonly ip: pulumi.Output<string>;
  public readonly pricePerHour: pulumi.Output<number | undefined>;
  public readonly scratchVolumeId: pulumi.Output<string>;
  /** The host key every command pins. */
  public readonly hostKey: pulumi.Output<string>;
  /** restore-instance's per-step timing table (no secrets). */
  public readonly restoreReport: pulumi.Output<string>;

  constructor(name: string, args: GpuWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:verda:GpuWorker", name, {}, opts);
    validate(name, args);
    const a = args;
    // Children of the parts used to be children of this component (see the header).
    const part = { parent: this };
    const formerParent = this;

    const machine = new WorkerInstance(
      name,
      {
        instance: a.instance,
        hostPublicKey: a.hostPublicKey,
        sfs: a.sfs,
        scratch: a.scratch,
        sfsMount: a.paths.sfsMount,
        backupSetName: a.backup.setName,
        ssh: a.ssh,
        sshHostOverride: a.sshHostOverride,
        hostKeyScanSeconds: a.timeouts.hostKeyScanSeconds,
        formerParent,
      },
      part,
    );
    const restore = new WorkerRestore(
      name,
      {
        target: machine.target,
        instanceId: machine.instanceId,
        scratchVolumeId: machine.scratchVolumeId,
        scratchOutlivesInstance: a.scratch.lifetime === "month",
        sfsMountTarget: a.sfs.mountTarget,
        sfsVolumeId: a.sfs.volumeId,
        identityPinned: Boolean(a.hostPublicKey),
        paths: a.paths,
        r2: a.r2,
        secrets: a.secrets,
        restore: a.restore,
        backup: a.backup,
        hostEnv: a.hostEnv,
        timeouts: a.timeouts,
        after: machine.volumesReady,
        // The chain's mount waits for the share too; the upload and the backup hooks below do not.
        sfsShared: [machine.sfsShared],
        formerParent,
      },
      part,
    );
    new WorkerBackupHooks(
      name,
      {
        target: machine.target,
        mello: a.mello,
        instance: machine.instance,
        instanceId: machine.instanceId,
        scratchVolumeId: machine.scratchVolumeId,
        scratchStartsBlank: a.scratch.lifetime === "day",
        stack: pulumi.getStack(),
        r2: a.r2,
        paths: a.paths,
        hostEnv: a.hostEnv,
        melloHostEnv: a.melloHostEnv,
        backupSeconds: a.timeouts.backupSeconds,
        shrink: { tolerance: a.backup.shrinkTolerance, accept: a.backup.acceptShrink ?? [] },
        // The hook's delete needs the instance, its scratch, the scripts and the toolchain (rclone, jq); its create
        // (a pre-flight) needs no more, so it runs beside prepare-scratch and the restore instead of after them.
        // Nothing else in the chain has a delete, so the nightly order is unchanged.
        after: [...machine.volumesReady, restore.scriptFiles, restore.toolchain],
        melloAfter: machine.volumesReady,
        formerParent,
      },
      part,
    );

    this.instanceId = machine.instanceId;
    this.ip = machine.ip;
    this.pricePerHour = machine.pricePerHour;
    this.scratchVolumeId = machine.scratchVolumeId;
    this.hostKey = machine.hostKey;
    this.restoreReport = restore.restoreReport;
    this.registerOutputs({
      instanceId: this.instanceId,
      ip: this.ip,
      pricePerHour: this.pricePerHour,
      scratchVolumeId: this.scratchVolumeId,
      hostKey: this.hostKey,
      restoreReport: this.restoreReport,
    });
  }
}

function validate(name: string, a: GpuWorkerArgs): void {
  const problems: string[] = [];
  if (a.instance.osVolumeSizeGb <= 0) problems.push("osVolumeSizeGb must be positive");
  if (a.scratch.lifetime === "day" && a.scratch.sizeGb <= 0) problems.push("scratch sizeGb must be positive");
  if (!a.paths.sfsMount.startsWith("/") || !a.paths.scratchMount.startsWith("/")) problems.push("mount points must be absolute");
  if (a.paths.sfsMount === a.paths.scratchMount) problems.push("the SFS and the scratch need different mount points");
  const tolerance = a.backup.shrinkTolerance;
  if (tolerance !== undefined && !(tolerance >= 0 && tolerance <= 1)) problems.push(`backup.shrinkTolerance must be a fraction from 0 to 1 (got ${tolerance})`);
  if ((a.backup.acceptShrink ?? []).some((set) => set.trim() === "")) problems.push("backup.acceptShrink must list set names as printed by the failed backup");
  if (problems.length) throw new Error(`GpuWorker ${name}: ${problems.join("; ")}`);
}
