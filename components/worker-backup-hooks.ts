// Backup-before-delete hooks: RemoteCommands whose `delete` runs a verified backup, with the
// connection and stdin recorded in state. Pulumi deletes dependents first, so both depend on the
// instance and its scratch: their backups run while both still exist, and a failure stops the destroy
// with the instance and its data in place. mello's hook (its own user files) runs after the
// instance's, which depends on it. No deletedWith and no retainOnDelete here: either would skip the
// backup.
//
// An InstanceGuard depends on the instance's hook, so Pulumi deletes it first: when the instance is
// gone or not running (eviction, credit exhausted, deleted in the console, shut down), its delete stops
// the destroy before any hook or volume is touched, and says how to rescue the scratch
// (infra/providers/instance-guard.ts).
import * as pulumi from "@pulumi/pulumi";
import { InstanceGuard } from "../infra/providers/instance-guard";
import { RemoteCommand } from "../infra/remote";
import { HostScripts } from "./host-scripts";
import { chain, commandDeadline, connectionArgs, preflightCommand, repeated, scriptRunner, secretStdin, type ScriptArgs, type SshTarget } from "./remote";
import type { BucketNames } from "./backups";
import { BOOTSTRAP_FILES, bootstrapCommand, toolchainCommand } from "./toolchain";

/** --shrink-tolerance F and --accept-shrink SET (repeated), the same for every backup script. */
export function shrinkArgs(tolerance: number | undefined, accept: string[]): ScriptArgs {
  return [
    ...(tolerance === undefined ? [] : [["--shrink-tolerance", String(tolerance)] as [string, string]]),
    ...repeated("--accept-shrink", accept),
  ];
}

/** backup-mello.sh's arguments for a scratch's inputs and outputs: the worker's hook and the rescue share them. */
export function scratchBackupArgs(s: { endpoint: string; bucket: string; scratchMount: string; scratchStartsBlank: boolean; shrink: ScriptArgs }): ScriptArgs {
  return [
    ["--r2-endpoint", s.endpoint],
    ["--data-dir", s.scratchMount],
    ["--dirs", "inputs,outputs"],
    ["--bucket", s.bucket],
    ["--prefix", "scratch"],
    // A day scratch starts blank (no size baseline); otherwise never back up an empty mount point instead.
    s.scratchStartsBlank ? "--fresh-volume" : "--require-mount",
    // The scratch's hash state lives on the scratch (outside inputs/ and outputs/): it outlives the instance.
    ["--state-dir", `${s.scratchMount}/.comfyume/backup-state`],
    ...s.shrink,
  ];
}

export interface WorkerBackupHooksArgs {
  /** SSH to the instance, host key pinned. */
  target: SshTarget;
  /** SSH to mello (its own user files are backed up from there); none when the app (and its users' files) is not on mello. */
  mello?: SshTarget;
  /** The instance: when it is replaced, the old one is backed up first (the hooks are replaced with it). */
  instance: pulumi.Resource;
  /** Its Verda id, which the guard checks before the backup runs. */
  instanceId: pulumi.Input<string>;
  /** The scratch volume holding the users' files (named when the guard stops a destroy). */
  scratchVolumeId: pulumi.Input<string>;
  /**
   * The scratch was created blank this morning (day-scoped): an empty or smaller set than yesterday's backup is
   * normal (backup-mello --fresh-volume). Either way the scratch backup requires the mounted volume itself.
   */
  scratchStartsBlank: boolean;
  /** The day stack's name (for the rescue command in the guard's message). */
  stack: string;
  /** R2 endpoint, keys (stdin only) and bucket names. */
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  /** Mount points and script directories on the instance and on mello. */
  paths: { sfsMount: string; scratchMount: string; scriptsDir: string; melloScriptsDir: string };
  /** Non-secret environment for the instance's scripts. */
  hostEnv: Record<string, string>;
  /** Non-secret environment for mello's scripts. */
  melloHostEnv: Record<string, string>;
  /** Deadline of each backup script. */
  backupSeconds: number;
  /** The shrink check of both backup scripts: tolerance (unset = the scripts' default) and sets accepted to shrink. */
  shrink: { tolerance?: number; accept: string[] };
  /** What the instance hook's delete needs in place: the instance, its scratch, its scripts and toolchain. */
  after: pulumi.Input<pulumi.Resource>[];
  /** What mello's hook must outlive: the instance and its scratch. */
  melloAfter: pulumi.Input<pulumi.Resource>[];
  /** The GpuWorker these children belonged to before the split (aliases keep their URNs). */
  formerParent?: pulumi.Resource;
}

export class WorkerBackupHooks extends pulumi.ComponentResource {
  /** The instance-side hook (SFS sets, then the scratch's inputs and outputs). */
  public readonly instanceHook: RemoteCommand;
  /** mello's hook (its user files); none without `mello`. */
  public readonly melloHook?: RemoteCommand;
  /** Stops a destroy before the hooks when the instance cannot be backed up. */
  public readonly guard: InstanceGuard;

  constructor(name: string, args: WorkerBackupHooksArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:verda:WorkerBackupHooks", name, {}, opts);
    const a = args;
    const moved = (): pulumi.CustomResourceOptions => ({
      parent: this,
      ...(a.formerParent ? { aliases: [{ parent: a.formerParent }] } : {}),
    });
    const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
    const shrink = shrinkArgs(a.shrink.tolerance, a.shrink.accept);
    const r2Stdin = secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey });
    // If the instance is ever replaced, the old one is backed up first (delete runs, then the new hook).
    const withTheInstance = { replaceWith: [a.instance], deleteBeforeReplace: true, additionalSecretOutputs: ["stdout", "stderr"] };

    this.melloHook = a.mello ? this.melloBackupHook(name, a, a.mello, moved, withTheInstance, r2Stdin) : undefined;

    this.instanceHook = new RemoteCommand(
      `${name}-backup-before-delete`,
      {
        connection: connectionArgs(a.target),
        // Pre-flight on create: the script is in place and runs.
        create: preflightCommand(run, "backup-to-r2.sh"),
        // Two verified backups from one stdin: the SFS sets, then the users' inputs and outputs on
        // scratch (a day-scoped scratch goes with the instance). The secrets stay in a shell variable.
        delete: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) =>
          chain([
            "secrets=$(cat)",
            `printf '%s\\n' "$secrets" | ${run(
              "backup-to-r2.sh",
              [
                ["--r2-endpoint", endpoint],
                ["--sfs", a.paths.sfsMount],
                ["--models-bucket", buckets.models],
                ["--cache-bucket", buckets.cache],
                ["--worker-bucket", buckets.workerContainer],
                ...shrink,
              ],
              a.backupSeconds,
              true,
            )}`,
            `printf '%s\\n' "$secrets" | ${run(
              "backup-mello.sh",
              scratchBackupArgs({ endpoint, bucket: buckets.userFiles, scratchMount: a.paths.scratchMount, scratchStartsBlank: !!a.scratchStartsBlank, shrink }),
              a.backupSeconds,
              true,
            )}`,
          ]),
        ),
        stdin: r2Stdin,
        logging: "none",
        timeoutSeconds: commandDeadline(a.backupSeconds, a.backupSeconds),
      },
      { ...moved(), ...withTheInstance, dependsOn: [...a.after, ...(this.melloHook ? [this.melloHook] : [])] },
    );

    // Depends on the instance's hook, so its delete (the check) runs before the hook's (the backup).
    this.guard = new InstanceGuard(
      `${name}-instance-guard`,
      { instanceId: a.instanceId, scratchVolumeId: a.scratchVolumeId, stack: a.stack },
      { parent: this, dependsOn: [this.instanceHook], replaceWith: [a.instance], deleteBeforeReplace: true },
    );

    this.registerOutputs({});
  }

  /** mello's scripts, toolchain and backup-before-delete hook (its users' files go to R2 before the instance goes). */
  private melloBackupHook(
    name: string,
    a: WorkerBackupHooksArgs,
    mello: SshTarget,
    moved: () => pulumi.CustomResourceOptions,
    withTheInstance: pulumi.CustomResourceOptions,
    r2Stdin: pulumi.Input<string>,
  ): RemoteCommand {
    const runOnMello = scriptRunner(a.paths.melloScriptsDir, a.melloHostEnv);
    const shrink = shrinkArgs(a.shrink.tolerance, a.shrink.accept);
    const melloScripts = new HostScripts(`${name}-mello-scripts`, { target: mello, remoteDir: a.paths.melloScriptsDir, scripts: ["backup-mello.sh", ...BOOTSTRAP_FILES] }, moved());
    // mello's toolchain (rclone, jq for backup-mello) before anything runs there; no SFS: from its apt sources, and
    // without nfs-common (mello never mounts the SFS).
    const melloToolchain = toolchainCommand(
      `${name}-mello-toolchain`,
      { connection: connectionArgs(mello), bootstrapRuns: 1, commands: [bootstrapCommand({ scriptsDir: a.paths.melloScriptsDir, env: a.melloHostEnv, noSfs: true })] },
      { ...moved(), dependsOn: [melloScripts.files] },
    );
    return new RemoteCommand(
      `${name}-backup-mello-before-delete`,
      {
        connection: connectionArgs(mello),
        create: preflightCommand(runOnMello, "backup-mello.sh"),
        delete: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) =>
          runOnMello("backup-mello.sh", [["--r2-endpoint", endpoint], ["--bucket", buckets.userFiles], ...shrink], a.backupSeconds, true),
        ),
        stdin: r2Stdin,
        logging: "none",
        // One deadline for the pre-flight and the backup; the delete's is the one that matters.
        timeoutSeconds: commandDeadline(a.backupSeconds),
      },
      { ...moved(), ...withTheInstance, dependsOn: [...a.melloAfter, melloScripts.files, melloToolchain] },
    );
  }
}
