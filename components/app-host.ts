// The app host: the workshop app (frontends, Redis, queue manager, admin, nginx) on a Verda CPU
// instance the month layer owns (config app.host = verda; docs/configuration.md, "Where the app runs").
// Built from the worker's building blocks, in order:
//   instance (SFS attached at creation; first-boot identity script when the host key is pinned) ->
//   host key -> SFS share -> scripts upload -> toolchain --pre-mount -> mount-sfs -> toolchain from
//   the SFS cache -> restore-instance (identity, project, .env from the SFS cache, R2 as fallback) ->
//   start-app (compose up, Redis answers where the workers reach it) -> hourly backup cron (SFS cache)
//   and hourly R2 copy of the users' files (app-r2-hourly.sh),
// and a backup-before-delete hook (app-host-backup.ts): the instance goes only after verified backups.
// Adopted (config app.adopt: the instance runs the app today, its live data on it): the instance is taken
// as it is (protected, retained) and the chain never restores over it nor starts anything: SFS share ->
// scripts -> toolchain -> mount-sfs (marker check) -> check-app (start-app --check-only) -> backup cron.
import * as pulumi from "@pulumi/pulumi";
import { Instance, StartupScript } from "../infra/providers";
import { SfsShare } from "../infra/providers/sfs-share";
import { RemoteCommand } from "../infra/remote";
import { adoptedOptions, adoptInput, type AdoptRef } from "./adoption";
import { appBackupHook, appFilesArgs } from "./app-host-backup";
import type { BucketNames } from "./backups";
import { firstBootScript, firstContactHostKey } from "./host-identity";
import { HostScripts } from "./host-scripts";
import { chain, commandDeadline, connectionArgs, repeated, scriptRunner, secretStdin, shellQuote, type ScriptArgs, type SshTarget } from "./remote";
import { bootstrapCommand, toolchainCacheDir, toolchainCommand } from "./toolchain";
import { INSTANCE_SCRIPTS } from "./worker-restore";
import { PLACEMENT_KEYS } from "./worker-instance";
import { shrinkArgs } from "./worker-backup-hooks";

/** The app's own settings (config `app`, defaults resolved). */
export interface AppSettings {
  projectDir: string;
  /** The users' files, backed up to R2 before the host goes. */
  dataDir: string;
  dataDirs: string[];
  composeFiles: string[];
  composeProfiles: string[];
  services: string[];
  imageTarballs: string[];
  /** The tailnet address its restored identity must come back with (unset: restoreSkip has tailscale). */
  expectedTailscaleIp?: string;
  /** Where the day's workers reach Redis: the tailnet address or the instance's IP; redisHost wins. */
  redisReach: "tailnet" | "instance-ip";
  redisHost?: string;
  redisPort: number;
  healthTimeoutSeconds: number;
  /** The backup set in the SFS cache it restores from and backs up to. */
  backupSetName: string;
  restoreSkip: string[];
  /** The user-files bucket for its files; default the idle stack's. */
  backupBucket?: string;
}

export interface AppHostArgs {
  /** What to deploy: a CPU type, its image, hostname, location, OS disk and SSH keys. */
  instance: { instanceType: string; image: string; hostname: string; locationCode: string; osVolumeSizeGb: number; sshKeyIds: pulumi.Input<pulumi.Input<string>[]> };
  /** Its long-lived host key; unset = first-contact pinning (see host-identity.ts). */
  hostPublicKey?: string;
  /**
   * Adopt the running app instance (config app.adopt) instead of creating one: protected, retained, never
   * replaced; no restore and no start over its live data, only a check that the app answers.
   */
  adopt?: AdoptRef;
  /**
   * The month's SFS: id (attached at creation) and `host:/path` mount target; `seeded`, when a loader seeds
   * it in this run, makes the restore wait for the seeding (the cache it restores from is complete).
   */
  sfs: { volumeId: pulumi.Input<string>; mountTarget: pulumi.Input<string>; seeded?: pulumi.Input<unknown> };
  /** SSH to the instance (user, port, key, dial limits). */
  ssh: Omit<SshTarget, "host" | "hostKey">;
  /** SSH address to use instead of the instance IP (loopback test hosts). */
  sshHostOverride?: string;
  /** R2 endpoint, keys (stdin only) and bucket names. */
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  /** Secrets the restore and the health check need (stdin only). */
  secrets: { redisPassword: pulumi.Input<string>; tailscaleAuthKey: pulumi.Input<string> };
  app: AppSettings;
  /** The SFS mount point, the scripts directory and the restore log on the host. */
  paths: { sfsMount: string; scriptsDir: string; restoreLog: string };
  /** The hourly cron's schedule and the backups' shrink check. */
  backup: { cronSchedule: string; shrinkTolerance?: number; acceptShrink?: string[] };
  /** Non-secret environment for every script on the host. */
  hostEnv: Record<string, string>;
  timeouts: { mountSeconds: number; restoreSeconds: number; backupSeconds: number; hostKeyScanSeconds: number };
}

/** Every script the app host runs: the worker's set (restore, backups, cron, toolchain) and start-app. */
export const APP_HOST_SCRIPTS = [...INSTANCE_SCRIPTS, "start-app.sh", "app-r2-hourly.sh"];

export class AppHost extends pulumi.ComponentResource {
  public readonly instance: Instance;
  public readonly instanceId: pulumi.Output<string>;
  public readonly ip: pulumi.Output<string>;
  public readonly hostKey: pulumi.Output<string>;
  /** Where the day's workers reach the app's Redis. */
  public readonly redisHost: pulumi.Output<string>;
  public readonly redisPort: pulumi.Output<number>;
  /** The backup-before-delete hook. */
  public readonly backupHook: RemoteCommand;

  constructor(name: string, args: AppHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:app:AppHost", name, {}, opts);
    validate(name, args);
    const a = args;
    const child = { parent: this };

    // An adopted instance booted long ago: no first-boot script.
    const firstBoot = a.hostPublicKey && !a.adopt
      ? new StartupScript(
          `${name}-first-boot`,
          { name: `${a.instance.hostname}-first-boot`, script: pulumi.output(a.sfs.mountTarget).apply((t) => firstBootScript({ sfsMountTarget: t, sfsMount: a.paths.sfsMount, backupSet: a.app.backupSetName })) },
          child,
        )
      : undefined;
    this.instance = new Instance(
      `${name}-instance`,
      {
        instanceType: a.instance.instanceType,
        image: a.instance.image,
        hostname: a.instance.hostname,
        description: `comfyume app host (${a.instance.hostname})`,
        locationCode: a.instance.locationCode,
        sshKeyIds: pulumi.output(a.instance.sshKeyIds),
        startupScriptId: firstBoot?.scriptId,
        osVolume: { name: `${a.instance.hostname}-os`, size: a.instance.osVolumeSizeGb },
        existingVolumes: pulumi.all([a.sfs.volumeId]),
        contract: "PAY_AS_YOU_GO",
        adopt: adoptInput(a.adopt, "comfyume:app", { instanceType: "instanceType", hostname: "hostname", locationCode: "location", image: "image" }, "the app instance"),
      },
      // The startup script only matters at first boot: a new SFS pseudo path must not replace the running app.
      // Nor may a config edit of its placement, image or OS disk: the users' files live on it for the month
      // (a replacement backs them up first, but the new host does not get them back). Edits apply next month.
      // Adopted: the provider itself never plans a change and reports each edit ("warning: adopted"), so it must see them.
      { ...child, ignoreChanges: a.adopt ? ["startupScriptId"] : ["startupScriptId", ...PLACEMENT_KEYS, "image", "osVolume"], deleteBeforeReplace: true, ...adoptedOptions(a.adopt) },
    );
    const instance = this.instance;
    this.instanceId = instance.instanceId;
    this.ip = instance.ip.apply((ip) => ip ?? "");
    if (a.hostPublicKey) {
      this.hostKey = pulumi.output(a.hostPublicKey);
    } else {
      const firstContact = firstContactHostKey(
        `${name}-host-key`,
        { target: { ...a.ssh, host: a.sshHostOverride ?? this.ip }, waitSeconds: a.timeouts.hostKeyScanSeconds, triggers: [instance.instanceId] },
        { ...child, dependsOn: [instance] },
      );
      this.hostKey = firstContact.presentedHostKey;
    }
    const target: SshTarget = { ...a.ssh, host: a.sshHostOverride ? pulumi.output(a.sshHostOverride) : this.ip, hostKey: this.hostKey };
    const sfsShare = new SfsShare(`${name}-sfs-share`, { sfsId: a.sfs.volumeId, instanceId: instance.instanceId, hostname: a.instance.hostname }, { ...child, dependsOn: [instance] });

    this.redisHost = a.app.redisHost ? pulumi.output(a.app.redisHost) : a.app.redisReach === "tailnet" ? pulumi.output(a.app.expectedTailscaleIp ?? "") : this.ip;
    this.redisPort = pulumi.output(a.app.redisPort);

    const chainSteps = restoreChain(name, a, target, instance, sfsShare, this.redisHost, this);
    this.backupHook = appBackupHook(
      `${name}-backup-before-delete`,
      {
        target,
        instance,
        after: [sfsShare, chainSteps.scripts, chainSteps.toolchain],
        r2: a.r2,
        bucket: a.app.backupBucket,
        paths: { sfsMount: a.paths.sfsMount, scriptsDir: a.paths.scriptsDir, projectDir: a.app.projectDir, dataDir: a.app.dataDir },
        dataDirs: a.app.dataDirs,
        backupSetName: a.app.backupSetName,
        backupSkip: backupSkip(a.app),
        hostEnv: a.hostEnv,
        backupSeconds: a.timeouts.backupSeconds,
        shrink: { tolerance: a.backup.shrinkTolerance, accept: a.backup.acceptShrink ?? [] },
      },
      child,
    );

    this.registerOutputs({ instanceId: this.instanceId, ip: this.ip, hostKey: this.hostKey, redisHost: this.redisHost, redisPort: this.redisPort });
  }
}

/** The chain from the scripts upload to the backup cron; every step runs again on a new instance. */
function restoreChain(name: string, a: AppHostArgs, target: SshTarget, instance: Instance, sfsShare: SfsShare, redisHost: pulumi.Output<string>, parent: pulumi.Resource) {
  const connection = connectionArgs(target);
  const perInstance = [instance.instanceId];
  const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
  const child = { parent };
  const scripts = new HostScripts(`${name}-scripts`, { target, remoteDir: a.paths.scriptsDir, scripts: APP_HOST_SCRIPTS, triggers: perInstance }, { ...child, dependsOn: [instance, sfsShare] });
  const preMount = toolchainCommand(
    `${name}-toolchain-pre-mount`,
    { connection, triggers: perInstance, bootstrapRuns: 1, commands: [bootstrapCommand({ scriptsDir: a.paths.scriptsDir, env: a.hostEnv, preMount: true })] },
    { ...child, dependsOn: [scripts.files] },
  );
  const mountSfs = new RemoteCommand(
    `${name}-mount-sfs`,
    {
      connection,
      triggers: perInstance,
      // `seeded` orders the mount after this run's seeding (the loader writes the SFS's identity marker
      // mount-sfs checks, and the cache the restore reads); its value is not part of the command.
      create: pulumi
        .all([a.sfs.mountTarget, a.sfs.volumeId, a.sfs.seeded])
        .apply(([t, id]) => run("mount-sfs.sh", [["--target", t], ["--mount-point", a.paths.sfsMount], ["--sfs-id", id]], a.timeouts.mountSeconds)),
      timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
    },
    { ...child, dependsOn: [scripts.files, preMount] },
  );
  const toolchain = toolchainCommand(
    `${name}-toolchain`,
    { connection, triggers: perInstance, bootstrapRuns: 1, commands: [bootstrapCommand({ scriptsDir: a.paths.scriptsDir, env: a.hostEnv, cacheDir: toolchainCacheDir(a.paths.sfsMount) })] },
    { ...child, dependsOn: [mountSfs] },
  );
  // Adopted: the app runs with its live data; nothing is restored or started over it, only checked.
  const appUp = a.adopt ? checkApp(name, a, connection, perInstance, redisHost, toolchain, parent) : restoreAndStart(name, a, connection, perInstance, redisHost, toolchain, parent);
  new RemoteCommand(
    `${name}-backup-cron`,
    {
      connection,
      triggers: perInstance,
      create: run(
        "install-backup-cron.sh",
        [["--schedule", a.backup.cronSchedule], "--", ["--name", a.app.backupSetName], ["--sfs", a.paths.sfsMount], ["--project-dir", a.app.projectDir], ...repeated("--skip", backupSkip(a.app))],
        a.timeouts.mountSeconds,
      ),
      timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
    },
    { ...child, dependsOn: [appUp] },
  );
  // The users' files to R2 every hour too (verified, locked against overlap; the keys kept root-only for cron).
  new RemoteCommand(
    `${name}-r2-hourly-cron`,
    {
      connection,
      triggers: perInstance,
      create: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) => {
        const bucket = a.app.backupBucket ?? buckets.userFiles;
        const shrink = shrinkArgs(a.backup.shrinkTolerance, a.backup.acceptShrink ?? []);
        return run("app-r2-hourly.sh", ["install", "--", ...appFilesArgs(endpoint, bucket, a.app.dataDir, a.app.dataDirs, shrink)], a.timeouts.mountSeconds, true);
      }),
      stdin: secretStdin({ R2_ACCESS_KEY_ID: a.r2.accessKeyId, R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.timeouts.mountSeconds),
    },
    { ...child, dependsOn: [appUp], additionalSecretOutputs: ["stdout", "stderr"] },
  );
  return { scripts: scripts.files, toolchain };
}

type Connection = ReturnType<typeof connectionArgs>;

/** An adopted app host: every service already runs and Redis answers where the workers reach it (start-app --check-only). */
function checkApp(name: string, a: AppHostArgs, connection: Connection, perInstance: pulumi.Input<string>[], redisHost: pulumi.Output<string>, after: pulumi.Resource, parent: pulumi.Resource): RemoteCommand {
  const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
  return new RemoteCommand(
    `${name}-check-app`,
    {
      connection,
      triggers: perInstance,
      create: redisHost.apply((host) => run("start-app.sh", [...startAppArgs({ ...a.app, imageTarballs: [] }, host), "--check-only"], a.app.healthTimeoutSeconds + 60, true)),
      stdin: secretStdin({ REDIS_PASSWORD: a.secrets.redisPassword }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.app.healthTimeoutSeconds + 60),
    },
    { parent, dependsOn: [after], additionalSecretOutputs: ["stdout", "stderr"] },
  );
}

/** A new app host: restore identity, project and .env from the SFS cache (R2 as fallback), then start the app. */
function restoreAndStart(name: string, a: AppHostArgs, connection: Connection, perInstance: pulumi.Input<string>[], redisHost: pulumi.Output<string>, after: pulumi.Resource, parent: pulumi.Resource): RemoteCommand {
  const run = scriptRunner(a.paths.scriptsDir, a.hostEnv);
  const child = { parent };
  const restore = new RemoteCommand(
    `${name}-restore`,
    {
      connection,
      triggers: perInstance,
      create: pulumi.all([a.r2.endpoint, a.r2.buckets]).apply(([endpoint, buckets]) => restoreCommand(a, endpoint, buckets.cache)),
      stdin: secretStdin({
        TAILSCALE_AUTH_KEY: a.secrets.tailscaleAuthKey,
        REDIS_PASSWORD: a.secrets.redisPassword,
        R2_ACCESS_KEY_ID: a.r2.accessKeyId,
        R2_SECRET_ACCESS_KEY: a.r2.secretAccessKey,
        // Redis is published where the day's workers reach it (compose: ${REDIS_BIND_IP}:6379).
        ENV_REDIS_BIND_IP: redisHost,
      }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.timeouts.restoreSeconds),
    },
    { ...child, dependsOn: [after], additionalSecretOutputs: ["stdout", "stderr"] },
  );
  return new RemoteCommand(
    `${name}-start-app`,
    {
      connection,
      triggers: perInstance,
      create: redisHost.apply((host) => run("start-app.sh", startAppArgs(a.app, host), a.app.healthTimeoutSeconds + 600, true)),
      stdin: secretStdin({ REDIS_PASSWORD: a.secrets.redisPassword }),
      logging: "none",
      timeoutSeconds: commandDeadline(a.app.healthTimeoutSeconds + 600),
    },
    { ...child, dependsOn: [restore], additionalSecretOutputs: ["stdout", "stderr"] },
  );
}

/** restore-instance for the app host: identity, project and .env; no worker image, no worker, no ComfyUI (start-app does the rest). */
export function restoreCommand(a: AppHostArgs, endpoint: string, cacheBucket: string): string {
  const run = scriptRunner(a.paths.scriptsDir, { ...a.hostEnv, RESTORE_LOG: a.paths.restoreLog });
  // First-contact mode pins the instance's own key: restoring another identity would break it.
  const skips = new Set(["worker-image", "worker", "health-comfyui", "health-redis", ...a.app.restoreSkip, ...(a.hostPublicKey ? [] : ["ssh-host-keys"])]);
  const args: ScriptArgs = [
    ["--sfs", a.paths.sfsMount],
    ["--name", a.app.backupSetName],
    ["--project-dir", a.app.projectDir],
    ...(a.app.expectedTailscaleIp ? [["--expected-tailscale-ip", a.app.expectedTailscaleIp] as [string, string]] : []),
    ["--health-timeout", String(a.app.healthTimeoutSeconds)],
    ["--r2-endpoint", endpoint],
    ["--cache-bucket", cacheBucket],
    ...repeated("--skip", skips),
  ];
  // The log holds the last run only (restore-instance appends to RESTORE_LOG).
  const log = shellQuote(a.paths.restoreLog);
  return chain([`mkdir -p "$(dirname ${log})"`, `: >${log}`, run("restore-instance.sh", args, a.timeouts.restoreSeconds, true)]);
}

/** What backup-instance leaves out on the app host: a host restored without Tailscale (restoreSkip) has no identity to save. */
export function backupSkip(app: Pick<AppSettings, "restoreSkip">): string[] {
  return app.restoreSkip.includes("tailscale") ? ["tailscale"] : [];
}

/** start-app.sh's arguments from the app's settings. */
export function startAppArgs(app: AppSettings, redisHost: string): ScriptArgs {
  return [
    ["--project-dir", app.projectDir],
    ...repeated("--compose-file", app.composeFiles),
    ...repeated("--profile", app.composeProfiles),
    ...repeated("--service", app.services),
    ...repeated("--image-tarball", app.imageTarballs),
    ["--redis-host", redisHost],
    ["--redis-port", String(app.redisPort)],
    ["--health-timeout", String(app.healthTimeoutSeconds)],
  ];
}

function validate(name: string, a: AppHostArgs): void {
  const problems: string[] = [];
  if (!a.instance.instanceType.startsWith("CPU.")) problems.push(`instanceType ${a.instance.instanceType} is not a CPU type`);
  if (a.instance.osVolumeSizeGb <= 0) problems.push("osVolumeSizeGb must be positive");
  if (!a.app.services.length) problems.push("app.services is empty");
  if (!a.app.composeFiles.length) problems.push("app.composeFiles is empty");
  if (!a.app.dataDirs.length) problems.push("app.dataDirs is empty: the hook would back up nothing");
  if (a.app.redisReach === "tailnet" && !a.app.redisHost && !a.app.expectedTailscaleIp) problems.push("Redis is reached over the tailnet but no expectedTailscaleIp is set");
  if (problems.length) throw new Error(`AppHost ${name}: ${problems.join("; ")}`);
}
