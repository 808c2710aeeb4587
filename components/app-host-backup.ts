// The app host's backup-before-delete hook: a RemoteCommand whose `delete` runs three verified
// backups before the month's destroy (or a replacement) may delete the app host. Any failure exits
// non-zero, which stops the destroy with the instance and its data in place (the same guarantee as
// the worker's hook, components/worker-backup-hooks.ts):
//   1. backup-instance.sh: a fresh snapshot of the identity, config and project into the SFS cache;
//   2. backup-to-r2.sh --only cache: the SFS cache (that snapshot included) to R2, read back and hashed;
//   3. backup-mello.sh: the users' files on the app host to R2 (prefix `app`), read back and hashed.
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand } from "../infra/remote";
import type { BucketNames } from "./backups";
import { chain, commandDeadline, connectionArgs, preflightCommand, repeated, scriptRunner, secretStdin, shellQuote, type ScriptArgs, type SshTarget } from "./remote";
import { shrinkArgs } from "./worker-backup-hooks";

/** The R2 key prefix of the app host's user files in the user-files bucket (sets `app/<dir>`). */
export const APP_FILES_PREFIX = "app";

export interface AppBackupHookArgs {
  /** SSH to the app host, host key pinned. */
  target: SshTarget;
  /** The app host: replacing it backs up the old one first (the hook is replaced with it). */
  instance: pulumi.Resource;
  /** What the delete needs in place: the instance, its SFS share and mount, its scripts and toolchain. */
  after: pulumi.Input<pulumi.Resource>[];
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  /** The user-files bucket for the app's files (default: the idle stack's userFiles bucket). */
  bucket?: string;
  /** The SFS mount, the scripts directory, the app's project and data directories. */
  paths: { sfsMount: string; scriptsDir: string; projectDir: string; dataDir: string };
  /** The data directories under dataDir (each its own set `app/<dir>`). */
  dataDirs: string[];
  /** The app host's backup set in the SFS cache. */
  backupSetName: string;
  /** What backup-instance leaves out (`tailscale`: the host has no Tailscale identity, app.restoreSkip). */
  backupSkip?: string[];
  hostEnv: Record<string, string>;
  backupSeconds: number;
  shrink: { tolerance?: number; accept: string[] };
}

/** backup-mello.sh's arguments for the app host's users' files (sets `app/<dir>` in the user-files bucket). */
export function appFilesArgs(endpoint: string, bucket: string, dataDir: string, dataDirs: string[], shrink: ScriptArgs): ScriptArgs {
  return [["--r2-endpoint", endpoint], ["--data-dir", dataDir], ["--dirs", dataDirs.join(",")], ["--bucket", bucket], ["--prefix", APP_FILES_PREFIX], ...shrink];
}

/**
 * How long a nightly backup of the app host's users' files waits for an hourly R2 copy (app-r2-hourly.sh) that
 * holds the lock when the night starts: up to 15 minutes, and never more than half the backup's deadline, so the
 * backup itself keeps the other half. Without it, a night that began at :30 failed at once.
 */
export function nightlyLockWaitSeconds(backupSeconds: number): number {
  return Math.min(900, Math.floor(backupSeconds / 2));
}

/** A nightly backup-mello.sh's `--lock-wait`: it waits for an hourly copy that holds the lock (the hourly never waits). */
function nightlyLockWait(backupSeconds: number): ScriptArgs {
  return [["--lock-wait", String(nightlyLockWaitSeconds(backupSeconds))]];
}

/** The delete's script: three verified backups from one stdin (the secrets stay in a shell variable). */
export function appBackupCommand(a: AppBackupHookArgs, endpoint: string, buckets: BucketNames): string {
  const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
  const shrink = shrinkArgs(a.shrink.tolerance, a.shrink.accept);
  const bucket = a.bucket ?? buckets.userFiles;
  if (!bucket) throw new Error("the app host's backup has no user-files bucket: set comfyume:app.backupBucket, or the idle stack's backups.buckets.userFiles");
  return chain([
    "secrets=$(cat)",
    run("backup-instance.sh", [["--name", a.backupSetName], ["--sfs", a.paths.sfsMount], ["--project-dir", a.paths.projectDir], ...repeated("--skip", a.backupSkip ?? [])], a.backupSeconds),
    `printf '%s\\n' "$secrets" | ${run(
      "backup-to-r2.sh",
      [["--r2-endpoint", endpoint], ["--sfs", a.paths.sfsMount], ["--only", "cache"], ["--cache-bucket", buckets.cache], ...shrink],
      a.backupSeconds,
      true,
    )}`,
    `printf '%s\\n' "$secrets" | ${run("backup-mello.sh", [...appFilesArgs(endpoint, bucket, a.paths.dataDir, a.dataDirs, shrink), ...nightlyLockWait(a.backupSeconds)], a.backupSeconds, true)}`,
  ]);
}

/** The hook: a pre-flight on create, the verified backups on delete. No deletedWith, no retainOnDelete: either would skip the backup. */
export function appBackupHook(name: string, a: AppBackupHookArgs, opts: pulumi.CustomResourceOptions): RemoteCommand {
  const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
  return new RemoteCommand(
    name,
    {
      connection: connectionArgs(a.target),
      create: preflightCommand(run, "backup-mello.sh"),
      delete: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) => appBackupCommand(a, endpoint, buckets)),
      stdin: secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.backupSeconds, a.backupSeconds, a.backupSeconds),
    },
    { ...opts, replaceWith: [a.instance], deleteBeforeReplace: true, additionalSecretOutputs: ["stdout", "stderr"], dependsOn: [a.instance, ...a.after] },
  );
}

export interface AppFilesNightlyArgs {
  /** SSH to the month's app host, its host key pinned (the month's outputs appIp, appHostKey). */
  target: SshTarget;
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; bucket: pulumi.Input<string> };
  /** The app's data directory and its sets (the month's outputs appDataDir, appDataDirs). */
  dataDir: pulumi.Input<string>;
  dataDirs: pulumi.Input<string[]>;
  scriptsDir: string;
  hostEnv: Record<string, string>;
  backupSeconds: number;
  shrink: { tolerance?: number; accept: string[] };
}

/**
 * The day's nightly copy of the app host's users' files (app.host = verda): a RemoteCommand in the day
 * stack whose `delete` runs backup-mello.sh on the month's app host, verified. The nightly destroy then
 * puts the day's work on the app host in R2 as it does mello's; a failure stops the destroy.
 */
export function appFilesNightlyHook(name: string, a: AppFilesNightlyArgs, opts: pulumi.CustomResourceOptions): RemoteCommand {
  const run = scriptRunner(a.scriptsDir, a.hostEnv);
  const shrink = shrinkArgs(a.shrink.tolerance, a.shrink.accept);
  return new RemoteCommand(
    name,
    {
      connection: connectionArgs(a.target),
      create: preflightCommand(run, "backup-mello.sh"),
      delete: pulumi
        .all([a.r2.endpoint, a.r2.bucket, a.dataDir, a.dataDirs])
        .apply(([endpoint, bucket, dataDir, dirs]) => run("backup-mello.sh", [...appFilesArgs(endpoint, bucket, dataDir, dirs, shrink), ...nightlyLockWait(a.backupSeconds)], a.backupSeconds, true)),
      stdin: secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.backupSeconds),
    },
    { ...opts, additionalSecretOutputs: ["stdout", "stderr"] },
  );
}

/** The R2 key prefix of what serverless containers wrote to <sfs>/outputs (set `sfs/outputs`, user-files bucket). */
export const SFS_OUTPUTS_PREFIX = "sfs";

export interface SfsOutputsNightlyArgs extends Omit<AppFilesNightlyArgs, "dataDir" | "dataDirs"> {
  /** Where the app host mounts the SFS (paths.sfsMount); the containers write <sfsMount>/outputs. */
  sfsMount: string;
  /** The month's SFS id: the app host must mount that SFS (its <sfsMount>/.comfyume/sfs-id marker). */
  sfsId: pulumi.Input<string>;
  /** The month stack (named in the fix when the app host does not mount the SFS). */
  monthStack: string;
}

/** backup-mello.sh's arguments for <sfs>/outputs: the SFS must be mounted; its hash state lives on the SFS. */
export function sfsOutputsArgs(endpoint: string, bucket: string, sfsMount: string, shrink: ScriptArgs): ScriptArgs {
  return [
    ["--r2-endpoint", endpoint],
    ["--data-dir", sfsMount],
    ["--dirs", "outputs"],
    ["--bucket", bucket],
    ["--prefix", SFS_OUTPUTS_PREFIX],
    "--require-mount",
    ["--state-dir", `${sfsMount}/.comfyume/backup-state-outputs`],
    ...shrink,
  ];
}

/** Day up: the app host mounts the month's SFS (marker checked) and <sfs>/outputs exists for the containers. */
export function sfsOutputsPreflight(a: SfsOutputsNightlyArgs, sfsId: string): string {
  const run = scriptRunner(a.scriptsDir, a.hostEnv);
  const marker = shellQuote(`${a.sfsMount}/.comfyume/sfs-id`);
  const fail =
    `the app host does not mount the month's SFS ${sfsId} at ${a.sfsMount} (its marker reads '\${found:-none}'), so it cannot back up the outputs the serverless containers write there. ` +
    `Fix: scripts/pulumi up --refresh --stack ${a.monthStack} (the app host mounts the SFS), then run this again`;
  return chain([
    preflightCommand(run, "backup-mello.sh"),
    `found=$(cat ${marker} 2>/dev/null || true)`,
    `if [ "$found" != ${shellQuote(sfsId)} ]; then echo "${fail}" >&2; exit 1; fi`,
    `mkdir -p ${shellQuote(`${a.sfsMount}/outputs`)}`,
  ]);
}

/**
 * The serverless day's nightly copy of <sfs>/outputs (inference = serverless, app.host = verda): no GPU
 * instance exists to back up what the containers wrote, and the app host mounts the SFS. Its `delete`
 * runs backup-mello.sh there (read back and hashed); a failure stops the destroy, the outputs stay on the SFS.
 */
export function sfsOutputsNightlyHook(name: string, a: SfsOutputsNightlyArgs, opts: pulumi.CustomResourceOptions): RemoteCommand {
  const run = scriptRunner(a.scriptsDir, a.hostEnv);
  const shrink = shrinkArgs(a.shrink.tolerance, a.shrink.accept);
  return new RemoteCommand(
    name,
    {
      connection: connectionArgs(a.target),
      create: pulumi.output(a.sfsId).apply((id) => sfsOutputsPreflight(a, id)),
      delete: pulumi.all([a.r2.endpoint, a.r2.bucket]).apply(([endpoint, bucket]) => run("backup-mello.sh", [...sfsOutputsArgs(endpoint, bucket, a.sfsMount, shrink), ...nightlyLockWait(a.backupSeconds)], a.backupSeconds, true)),
      stdin: secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.backupSeconds),
    },
    { ...opts, additionalSecretOutputs: ["stdout", "stderr"] },
  );
}
