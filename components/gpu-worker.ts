// The day's worker: a Verda instance attached to the month's SFS and a scratch volume, restored
// from the SFS cache by the host scripts, with a backup hook that must succeed before it can go.
//
// Scratch order: Verda attaches block volumes only at instance creation (existing_volumes) or
// while the instance is shut down. A day-scoped scratch is created blank just before the instance
// and attached at creation, so whatever provisioning does to it cannot lose data (there is none
// yet); prepare-scratch then formats it only because blkid finds no signature. A month-scoped
// scratch already holds data: it is attached the same way, and prepare-scratch never formats a
// device that carries a filesystem (it mounts it as is, or refuses an unexpected signature).
//
// Destroy order: Pulumi deletes dependents first. Both backup hooks (RemoteCommands whose `delete`
// runs with the connection and stdin recorded in state) depend on the instance and the
// scratch volume, so their `delete` (backup-to-r2 on the instance, backup-mello on mello, each
// verifying its upload) runs while both still exist; a failure stops the destroy and the instance
// stays up with its data. No deletedWith and no retainOnDelete here: either would skip the backup.
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand } from "../infra/remote";
import { Instance, StartupScript, Volume } from "../infra/providers";
import { HostScripts } from "./host-scripts";
import { firstBootScript, firstContactHostKey } from "./host-identity";
import { chain, commandDeadline, connectionArgs, scriptCommand, secretStdin, shellQuote, type SshTarget } from "./remote";
import type { BucketNames } from "./backups";

export type ScratchArgs =
  | { lifetime: "day"; name: string; sizeGb: number; deletePermanently: boolean }
  | { lifetime: "month"; volumeId: pulumi.Input<string> };

export interface GpuWorkerArgs {
  instance: {
    instanceType: string;
    image: string;
    hostname: string;
    description: string;
    locationCode: string;
    spot: boolean;
    osVolumeSizeGb: number;
    sshKeyIds: pulumi.Input<pulumi.Input<string>[]>;
  };
  /** The worker's long-lived host key; unset = first-contact pinning (see host-identity.ts). */
  hostPublicKey?: string;
  sfs: { volumeId: pulumi.Input<string>; mountTarget: pulumi.Input<string> };
  scratch: ScratchArgs;
  /** SSH to the instance (user, port, key, dial limits). */
  ssh: Omit<SshTarget, "host" | "hostKey">;
  mello: SshTarget;
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  secrets: { redisPassword: pulumi.Input<string>; tailscaleAuthKey: pulumi.Input<string> };
  restore: { expectedTailscaleIp: string; redisHost: string; redisPort: number; healthTimeoutSeconds: number; skip: string[] };
  paths: { sfsMount: string; scratchMount: string; scriptsDir: string; melloScriptsDir: string; restoreLog: string };
  backup: { setName: string; cronSchedule: string };
  hostEnv: Record<string, string>;
  melloHostEnv: Record<string, string>;
  /** SSH address to use instead of the instance IP (loopback test hosts). */
  sshHostOverride?: string;
  timeouts: { mountSeconds: number; restoreSeconds: number; backupSeconds: number; hostKeyScanSeconds: number };
}

const INSTANCE_SCRIPTS = [
  "mount-sfs.sh",
  "prepare-scratch.sh",
  "restore-instance.sh",
  "install-backup-cron.sh",
  "backup-instance.sh",
  "backup-to-r2.sh",
  "backup-mello.sh",
];

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

    // 1. Scratch first (day-scoped: created blank, attached at instance creation).
    let scratchVolume: Volume | undefined;
    if (a.scratch.lifetime === "day") {
      scratchVolume = new Volume(
        `${name}-scratch`,
        { type: "NVMe", name: a.scratch.name, size: a.scratch.sizeGb, locationCode: a.instance.locationCode, permanent: a.scratch.deletePermanently },
        { parent: this },
      );
      this.scratchVolumeId = scratchVolume.volumeId;
    } else {
      this.scratchVolumeId = pulumi.output(a.scratch.volumeId);
    }

    // 2. First-boot identity script, only when the identity is pinned from config.
    const firstBoot = a.hostPublicKey
      ? new StartupScript(
          `${name}-first-boot`,
          {
            name: `${a.instance.hostname}-first-boot`,
            script: pulumi.output(a.sfs.mountTarget).apply((t) =>
              firstBootScript({ sfsMountTarget: t, sfsMount: a.paths.sfsMount, backupSet: a.backup.setName }),
            ),
          },
          { parent: this },
        )
      : undefined;

    // 3. The instance, with the SFS and the scratch attached at creation.
    const instance = new Instance(
      `${name}-instance`,
      {
        instanceType: a.instance.instanceType,
        image: a.instance.image,
        hostname: a.instance.hostname,
        description: a.instance.description,
        locationCode: a.instance.locationCode,
        sshKeyIds: pulumi.output(a.instance.sshKeyIds),
        startupScriptId: firstBoot?.scriptId,
        osVolume: { name: `${a.instance.hostname}-os`, size: a.instance.osVolumeSizeGb },
        existingVolumes: pulumi.all([a.sfs.volumeId, this.scratchVolumeId]),
        isSpot: a.instance.spot,
        contract: a.instance.spot ? "SPOT" : "PAY_AS_YOU_GO",
      },
      // The startup script only matters at first boot: a new SFS pseudo path must not replace a running worker.
      // Delete before replace: the scratch can only be attached to the new instance once the old one let go.
      { parent: this, ignoreChanges: ["startupScriptId"], deleteBeforeReplace: true },
    );
    this.instanceId = instance.instanceId;
    this.ip = instance.ip.apply((ip) => ip ?? "");
    this.pricePerHour = instance.pricePerHour;

    // 4. The host key to pin.
    if (a.hostPublicKey) {
      this.hostKey = pulumi.output(a.hostPublicKey);
    } else {
      const firstContact = firstContactHostKey(
        `${name}-host-key`,
        { target: { ...a.ssh, host: a.sshHostOverride ?? this.ip }, waitSeconds: a.timeouts.hostKeyScanSeconds, triggers: [instance.instanceId] },
        { parent: this, dependsOn: [instance] },
      );
      this.hostKey = firstContact.presentedHostKey;
    }
    const sshHost = a.sshHostOverride ? pulumi.output(a.sshHostOverride) : this.ip;
    const target: SshTarget = { ...a.ssh, host: sshHost, hostKey: this.hostKey };
    const connection = connectionArgs(target);
    const volumesReady: pulumi.Resource[] = [instance, ...(scratchVolume ? [scratchVolume] : [])];

    // 5. Restore chain: scripts -> mount-sfs -> prepare-scratch -> restore-instance -> backup cron.
    // A replaced instance starts empty: everything that set it up runs again (triggers replace).
    const perInstance = [instance.instanceId];
    const scripts = new HostScripts(
      `${name}-scripts`,
      { target, remoteDir: a.paths.scriptsDir, scripts: INSTANCE_SCRIPTS, triggers: perInstance },
      { parent: this, dependsOn: volumesReady },
    );
    const runOn = (scriptsDir: string, env: Record<string, string>) => (script: string, args: ScriptArgs, timeoutSeconds: number, readsStdin = false) =>
      scriptCommand({ scriptsDir, script, args, timeoutSeconds, env, readsStdin });
    const run = runOn(a.paths.scriptsDir, a.hostEnv);
    const runOnMello = runOn(a.paths.melloScriptsDir, a.melloHostEnv);

    // The mount target is an input: when the SFS pseudo path changes, this re-runs and re-mounts.
    const mountSfs = new RemoteCommand(
      `${name}-mount-sfs`,
      {
        connection,
        triggers: perInstance,
        create: pulumi.output(a.sfs.mountTarget).apply((t) => run("mount-sfs.sh", [["--target", t], ["--mount-point", a.paths.sfsMount]], a.timeouts.mountSeconds)),
        timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
      },
      { parent: this, dependsOn: [scripts.files] },
    );
    const prepareScratch = new RemoteCommand(
      `${name}-prepare-scratch`,
      {
        connection,
        triggers: perInstance,
        create: this.scratchVolumeId.apply((id) =>
          run("prepare-scratch.sh", [["--volume-id", id], ["--mount-point", a.paths.scratchMount]], a.timeouts.mountSeconds),
        ),
        timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
      },
      { parent: this, dependsOn: [mountSfs] },
    );
    // restore-instance logs to RESTORE_LOG: the configured path, which the report reads back. The
    // setting wins over a RESTORE_LOG in hostEnv, or the report would read another file.
    const runRestore = runOn(a.paths.scriptsDir, { ...a.hostEnv, RESTORE_LOG: a.paths.restoreLog });
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
            // First-contact mode pins the instance's own key: restoring another identity would break it.
            ...(a.hostPublicKey ? [] : [["--skip", "ssh-host-keys"] as [string, string]]),
            ...a.restore.skip.map((s) => ["--skip", s] as [string, string]),
          ],
          a.timeouts.restoreSeconds,
          true,
        ),
        a.paths.restoreLog,
      ),
    );
    const restore = new RemoteCommand(
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
      { parent: this, dependsOn: [prepareScratch], additionalSecretOutputs: ["stdout", "stderr"] },
    );
    const report = new RemoteCommand(
      `${name}-restore-report`,
      {
        connection,
        // The summary table restore-instance prints last (step, seconds, result): no secrets.
        create: `sed -n '/^STEP /,$p' ${shellQuote(a.paths.restoreLog)}`,
        // Re-read whenever restore ran again (a new instance or a changed restore command); the
        // triggers stay non-secret so the report is a plain output.
        triggers: [instance.instanceId, restoreScript],
        timeoutSeconds: 60,
      },
      { parent: this, dependsOn: [restore] },
    );
    this.restoreReport = report.stdout;
    const backupCron = new RemoteCommand(
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
      { parent: this, dependsOn: [restore] },
    );

    // 6. Backup-before-delete hooks. mello's runs after the instance's (it is deleted later).
    const melloScripts = new HostScripts(`${name}-mello-scripts`, { target: a.mello, remoteDir: a.paths.melloScriptsDir, scripts: ["backup-mello.sh"] }, { parent: this });
    const r2Stdin = secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey });
    const backupMello = new RemoteCommand(
      `${name}-backup-mello-before-delete`,
      {
        connection: connectionArgs(a.mello),
        create: runOnMello("backup-mello.sh", ["--help"], 60).replace(/ <\/dev\/null$/, " >/dev/null </dev/null"),
        delete: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) =>
          runOnMello("backup-mello.sh", [["--r2-endpoint", endpoint], ["--bucket", buckets.userFiles]], a.timeouts.backupSeconds, true),
        ),
        stdin: r2Stdin,
        logging: "none",
        // One deadline for the pre-flight and the backup; the delete's is the one that matters.
        timeoutSeconds: commandDeadline(a.timeouts.backupSeconds),
      },
      {
        parent: this,
        dependsOn: [...volumesReady, melloScripts.files],
        additionalSecretOutputs: ["stdout", "stderr"],
        // If the instance is ever replaced, the old one is backed up first (delete runs, then the new hook).
        replaceWith: [instance],
        deleteBeforeReplace: true,
      },
    );
    new RemoteCommand(
      `${name}-backup-before-delete`,
      {
        connection,
        // Pre-flight on create: the script is in place and runs.
        create: run("backup-to-r2.sh", ["--help"], 60).replace(/ <\/dev\/null$/, " >/dev/null </dev/null"),
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
              ],
              a.timeouts.backupSeconds,
              true,
            )}`,
            `printf '%s\\n' "$secrets" | ${run(
              "backup-mello.sh",
              [
                ["--r2-endpoint", endpoint],
                ["--data-dir", a.paths.scratchMount],
                ["--dirs", "inputs,outputs"],
                ["--bucket", buckets.userFiles],
                ["--prefix", "scratch"],
              ],
              a.timeouts.backupSeconds,
              true,
            )}`,
          ]),
        ),
        stdin: r2Stdin,
        logging: "none",
        timeoutSeconds: commandDeadline(a.timeouts.backupSeconds, a.timeouts.backupSeconds),
      },
      {
        parent: this,
        dependsOn: [...volumesReady, restore, backupCron, backupMello, scripts.files],
        additionalSecretOutputs: ["stdout", "stderr"],
        replaceWith: [instance],
        deleteBeforeReplace: true,
      },
    );

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

type ScriptArgs = (string | [string, string])[];

/**
 * Empties `log` before running `cmd`, which appends its log lines and step table there itself
 * (RESTORE_LOG): the file then holds the last run only, so the report shows one table, and it
 * survives a dropped connection. stderr still streams to the command; the exit code is cmd's.
 */
function withFreshLog(cmd: string, log: string): string {
  const l = shellQuote(log);
  return chain([`mkdir -p "$(dirname ${l})"`, `: >${l}`, cmd]);
}

function validate(name: string, a: GpuWorkerArgs): void {
  const problems: string[] = [];
  if (a.instance.osVolumeSizeGb <= 0) problems.push("osVolumeSizeGb must be positive");
  if (a.scratch.lifetime === "day" && a.scratch.sizeGb <= 0) problems.push("scratch sizeGb must be positive");
  if (!a.paths.sfsMount.startsWith("/") || !a.paths.scratchMount.startsWith("/")) problems.push("mount points must be absolute");
  if (a.paths.sfsMount === a.paths.scratchMount) problems.push("the SFS and the scratch need different mount points");
  if (problems.length) throw new Error(`GpuWorker ${name}: ${problems.join("; ")}`);
}
