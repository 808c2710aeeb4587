// Layer `<env>-day`: the worker instance and its scratch, restored from the month's SFS cache,
// with backup-before-delete hooks. Reads the idle and month layers through StackReferences.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type DayConfig } from "../config";
import { secretReference } from "./references";
import { GpuWorker, type ScratchArgs } from "../../components/gpu-worker";
import type { BucketNames } from "../../components/backups";
import { appFilesNightlyHook } from "../../components/app-host-backup";
import { liveSfsMountTarget, programVerdaCredentials } from "./live-sfs";
import { environmentSshKeyIds, idleReference } from "./environment";

/** The month layer this day stack builds on (shared with the money gate, which reads its SFS). */
export function monthReference(cfg: DayConfig): pulumi.StackReference {
  return new pulumi.StackReference("month", { name: cfg.stackRefs.month });
}

/**
 * With app.host = verda the workers reach Redis on the month's app host: its address and port are read
 * from the month stack (outputs appRedisHost, appRedisPort) before anything is declared, and replace
 * restore.redisHost/redisPort. With mello, the configured restore settings stand.
 */
export async function withAppRedis(cfg: DayConfig, month: pulumi.StackReference): Promise<DayConfig> {
  if (cfg.app.host !== "verda") {
    const monthApp = await month.getOutputDetails("appHost");
    if (monthApp.value === "verda") {
      pulumi.log.warn(
        `the month stack runs the app on its Verda app host (appHost=verda), but this day stack has app.host 'mello': the worker reaches Redis at ` +
          `restore.redisHost (${cfg.restore.redisHost}). Fix: scripts/pulumi config set --path 'comfyume:app.host' verda --stack ${cfg.stack} and remove restore.redisHost.`,
      );
    }
    return cfg;
  }
  const [host, port] = await Promise.all([month.getOutputDetails("appRedisHost"), month.getOutputDetails("appRedisPort")]);
  if (typeof host.value !== "string" || host.value === "") {
    throw new pulumi.RunError(
      `comfyume:app.host is 'verda', but the month stack ${cfg.stackRefs.month} exports no appRedisHost: its app host is not up. ` +
        `Fix: set app.host verda in the month stack and run 'scripts/pulumi up --stack ${cfg.stackRefs.month.split("/").pop()}' first ` +
        `(or set comfyume:app.host mello here and restore.redisHost to mello's address).`,
    );
  }
  const redisPort = typeof port.value === "number" ? port.value : cfg.restore.redisPort;
  return { ...cfg, restore: { ...cfg.restore, redisHost: host.value, redisPort } };
}

export function dayLayer(
  cfg: DayConfig,
  month: pulumi.StackReference = monthReference(cfg),
  idle: pulumi.StackReference = idleReference(cfg.stackRefs.idle),
): Record<string, pulumi.Output<unknown>> {
  const out = <T>(ref: pulumi.StackReference, key: string) => ref.requireOutput(key) as pulumi.Output<T>;

  const sfsId = out<string>(month, "sfsId");
  const mountTarget = liveSfsMountTarget(sfsId, out<string>(month, "sfsMountTarget"), out<string>(month, "sfsLocation"), cfg.verda.liveSfsRead ? programVerdaCredentials() : undefined);
  const privateKey = secretOutput(cfg.sshPrivateKey);
  const dial = { dialErrorLimit: cfg.ssh.dialErrorLimit, perDialTimeout: cfg.ssh.perDialTimeout };

  const scratch: ScratchArgs =
    cfg.scratch.lifetime === "month"
      ? { lifetime: "month", volumeId: out<string>(month, "scratchVolumeId") }
      : {
          lifetime: "day",
          name: cfg.scratch.name ?? `${cfg.gpu.hostname}-scratch`,
          sizeGb: cfg.scratch.sizeGb,
          deletePermanently: cfg.scratch.deletePermanently,
        };

  const worker = new GpuWorker("worker", {
    instance: {
      instanceType: cfg.gpu.instanceType,
      image: cfg.gpu.image,
      hostname: cfg.gpu.hostname,
      description: cfg.gpu.description,
      locationCode: cfg.gpu.location,
      spot: cfg.gpu.spot,
      osVolumeSizeGb: cfg.gpu.osVolumeSizeGb,
      sshKeyIds: environmentSshKeyIds(idle, cfg.environment),
      adopt: cfg.gpu.adopt,
    },
    hostPublicKey: cfg.gpu.hostPublicKey,
    sfs: { volumeId: sfsId, mountTarget },
    scratch,
    ssh: { user: cfg.ssh.user, port: cfg.ssh.port, privateKey, ...dial },
    // With the app on the month's app host, mello holds no users' files: no hook there (the app host's is below).
    mello: cfg.app.host === "verda" ? undefined : {
      host: out<string>(idle, "melloAddress"),
      port: out<number>(idle, "melloSshPort"),
      user: out<string>(idle, "melloSshUser"),
      hostKey: out<string>(idle, "melloHostKey"),
      privateKey,
      ...dial,
    },
    r2: {
      endpoint: out<string>(idle, "r2Endpoint"),
      accessKeyId: secretReference(idle, "r2AccessKeyId"),
      secretAccessKey: secretReference(idle, "r2SecretAccessKey"),
      buckets: out<BucketNames>(idle, "bucketNames"),
    },
    secrets: { redisPassword: secretOutput(cfg.redisPassword), tailscaleAuthKey: secretOutput(cfg.tailscaleAuthKey) },
    restore: { ...cfg.restore, layout: cfg.seed.layout, workerImageName: cfg.seed.workerImageName },
    paths: cfg.paths,
    backup: { setName: cfg.backup.setName ?? cfg.gpu.hostname, cronSchedule: cfg.backup.cronSchedule, shrinkTolerance: cfg.backup.shrinkTolerance, acceptShrink: cfg.backup.acceptShrink },
    hostEnv: cfg.hostEnv,
    melloHostEnv: cfg.melloHostEnv,
    sshHostOverride: cfg.ssh.hostOverride,
    timeouts: cfg.timeouts,
  });

  if (cfg.app.host === "verda") {
    // The day's work on the month's app host (the users' own files) goes to R2 with the nightly destroy, as mello's does.
    appFilesNightlyHook("app-files-backup-before-delete", {
      target: { host: cfg.ssh.hostOverride ?? out<string>(month, "appIp"), port: cfg.ssh.port, user: cfg.ssh.user, hostKey: out<string>(month, "appHostKey"), privateKey, ...dial },
      r2: {
        endpoint: out<string>(idle, "r2Endpoint"),
        accessKeyId: secretReference(idle, "r2AccessKeyId"),
        secretAccessKey: secretReference(idle, "r2SecretAccessKey"),
        bucket: pulumi.all([month.getOutput("appBackupBucket"), out<BucketNames>(idle, "bucketNames")]).apply(([own, names]) => (typeof own === "string" && own ? own : names.userFiles)),
      },
      dataDir: out<string>(month, "appDataDir"),
      dataDirs: out<string[]>(month, "appDataDirs"),
      scriptsDir: cfg.paths.scriptsDir,
      hostEnv: cfg.hostEnv,
      backupSeconds: cfg.timeouts.backupSeconds,
      shrink: { tolerance: cfg.backup.shrinkTolerance, accept: cfg.backup.acceptShrink },
    }, {});
  }

  if (!cfg.gpu.hostPublicKey) {
    pulumi.log.warn(
      "gpu.hostPublicKey is not set: the worker's SSH host key is trusted on first contact. Once a backup holds its identity, " +
        `pin it: scripts/pulumi config set --path 'comfyume:gpu.hostPublicKey' "$(scripts/pulumi stack output instanceHostKey --stack ${cfg.stack})" --stack ${cfg.stack}`,
    );
  }

  return {
    instanceId: worker.instanceId,
    instanceIp: worker.ip,
    pricePerHour: worker.pricePerHour,
    scratchVolumeId: worker.scratchVolumeId,
    instanceHostKey: worker.hostKey,
    sfsMountTarget: mountTarget,
    restoreReport: worker.restoreReport,
  };
}
