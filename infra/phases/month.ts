// Layer `<env>-month`: the SFS for the period (seeded from R2 by a temporary loader) and, when
// scratch lives for the month, the scratch volume. Reads the idle layer through a StackReference.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type MonthConfig } from "../config";
import { secretReference } from "./references";
import { SharedFilesystem, type LoaderArgs } from "../../components/shared-filesystem";
import type { BucketNames } from "../../components/backups";
import { serverlessMonth } from "./serverless";
import { environmentSshKeyIds, idleReference } from "./environment";
import { AppHost } from "../../components/app-host";

export function monthLayer(cfg: MonthConfig, idle: pulumi.StackReference = idleReference(cfg.stackRefs.idle)): Record<string, pulumi.Output<unknown>> {
  let loader: LoaderArgs | undefined;
  if (cfg.seed.loader) {
    pulumi.log.warn(
      `seed.loader is on: the loader instance ${cfg.seed.instanceType} bills until seeding is done and you run ` +
        `'scripts/pulumi config set --path comfyume:seed.loader false --stack ${cfg.stack}' and 'scripts/pulumi up --stack ${cfg.stack}'.`,
    );
    loader = {
      instanceType: cfg.seed.instanceType,
      image: cfg.seed.image,
      hostname: cfg.seed.hostname ?? `comfyume-${cfg.environment}-loader`,
      osVolumeSizeGb: cfg.seed.osVolumeSizeGb,
      sshKeyIds: environmentSshKeyIds(idle, cfg.environment),
      ssh: monthSsh(cfg),
      r2: idleR2(idle),
      scriptsDir: cfg.paths.scriptsDir,
      sfsMount: cfg.paths.sfsMount,
      hostEnv: cfg.hostEnv,
      sshHostOverride: cfg.ssh.hostOverride,
      timeouts: cfg.timeouts,
      layout: cfg.seed.layout,
      workerImageName: cfg.seed.workerImageName,
      publishManifest: cfg.seed.publishManifest,
    };
  }
  const sfs = new SharedFilesystem("shared-fs", {
    name: cfg.sfs.name,
    sizeGb: cfg.sfs.sizeGb,
    locationCode: cfg.sfs.location,
    protect: cfg.sfs.protect,
    adopt: cfg.sfs.adopt,
    loader,
    scratch:
      cfg.scratch.lifetime === "month"
        ? { name: cfg.scratch.name ?? `comfyume-${cfg.environment}-scratch`, sizeGb: cfg.scratch.sizeGb, deletePermanently: cfg.scratch.deletePermanently, adopt: cfg.scratch.adopt }
        : undefined,
  });

  // inference = serverless: the month owns the GPU workers as deployments at zero replicas.
  const serverless = cfg.inference === "serverless" ? serverlessMonth(cfg, sfs.volumeId) : {};
  const app = cfg.app.host === "verda" ? appHost(cfg, idle, sfs) : undefined;

  return {
    ...serverless,
    sfsId: sfs.volumeId,
    sfsMountCommand: sfs.mountCommand,
    sfsPseudoPath: sfs.pseudoPath,
    sfsMountTarget: sfs.mountTarget,
    sfsSizeGb: sfs.sizeGb,
    sfsLocation: sfs.locationCode,
    scratchLifetime: pulumi.output(cfg.scratch.lifetime),
    ...(sfs.scratchVolumeId ? { scratchVolumeId: sfs.scratchVolumeId } : {}),
    loaderRunning: pulumi.output(cfg.seed.loader),
    seeded: sfs.seeded,
    // Where the app runs; with verda, the day's workers read appRedisHost/appRedisPort (infra/phases/day.ts).
    appHost: pulumi.output(cfg.app.host),
    ...(app
      ? {
          appInstanceId: app.instanceId,
          appIp: app.ip,
          appHostKey: app.hostKey,
          appRedisHost: app.redisHost,
          appRedisPort: app.redisPort,
          // For the day's nightly copy of the app host's users' files (infra/phases/day.ts).
          appDataDir: pulumi.output(cfg.app.host === "verda" ? cfg.app.dataDir : ""),
          appDataDirs: pulumi.output(cfg.app.host === "verda" ? cfg.app.dataDirs : []),
          ...(cfg.app.host === "verda" && cfg.app.backupBucket ? { appBackupBucket: pulumi.output(cfg.app.backupBucket) } : {}),
        }
      : {}),
  };
}

/** The app on a Verda CPU instance for the month (config app.host = verda; components/app-host.ts). */
function appHost(cfg: MonthConfig, idle: pulumi.StackReference, sfs: SharedFilesystem): AppHost {
  const app = cfg.app;
  if (app.host !== "verda") throw new Error("appHost: app.host is not verda");
  if (app.redisReach === "instance-ip" && !app.redisHost) {
    pulumi.log.warn(
      `app.redisReach is 'instance-ip': the app's Redis is published on ${app.hostname}'s own address (REDIS_BIND_IP), reachable beyond the tailnet ` +
        "(password only). For the workshop keep it on the tailnet: scripts/pulumi config set --path 'comfyume:app.redisReach' tailnet",
    );
  }
  return new AppHost("app-host", {
    instance: {
      instanceType: app.instanceType,
      image: app.image,
      hostname: app.hostname,
      locationCode: app.location,
      osVolumeSizeGb: app.osVolumeSizeGb,
      sshKeyIds: idle.requireOutput("verdaSshKeyIds") as pulumi.Output<string[]>,
    },
    hostPublicKey: app.hostPublicKey,
    // The running app instance (docs/adopting.md): taken as it is; its chain checks the app, restores nothing.
    adopt: app.adopt,
    sfs: { volumeId: sfs.volumeId, mountTarget: sfs.mountTarget, seeded: sfs.seeded },
    ssh: monthSsh(cfg),
    sshHostOverride: cfg.ssh.hostOverride,
    r2: idleR2(idle),
    secrets: { redisPassword: secretOutput(cfg.redisPassword!), tailscaleAuthKey: secretOutput(cfg.tailscaleAuthKey!) },
    app,
    paths: { sfsMount: cfg.paths.sfsMount, scriptsDir: cfg.paths.scriptsDir, restoreLog: cfg.paths.restoreLog },
    backup: { cronSchedule: cfg.backup.cronSchedule, shrinkTolerance: cfg.backup.shrinkTolerance, acceptShrink: cfg.backup.acceptShrink },
    hostEnv: cfg.hostEnv,
    timeouts: cfg.timeouts,
  });
}

/** SSH to the month's hosts (the loader, the app host) with the stack's key. */
function monthSsh(cfg: MonthConfig) {
  return {
    user: cfg.ssh.user,
    port: cfg.ssh.port,
    privateKey: secretOutput(cfg.sshPrivateKey!),
    dialErrorLimit: cfg.ssh.dialErrorLimit,
    perDialTimeout: cfg.ssh.perDialTimeout,
  };
}

/** R2 as the idle stack publishes it: endpoint, keys (kept secret), bucket names. */
function idleR2(idle: pulumi.StackReference) {
  return {
    endpoint: idle.requireOutput("r2Endpoint") as pulumi.Output<string>,
    accessKeyId: secretReference(idle, "r2AccessKeyId"),
    secretAccessKey: secretReference(idle, "r2SecretAccessKey"),
    buckets: idle.requireOutput("bucketNames") as pulumi.Output<BucketNames>,
  };
}
