// Serverless GPU workers in the phases (comfyume:inference = serverless). The month layer owns the
// deployments, created at zero replicas; the day layer owns one DeploymentScaling per deployment, which
// sets the day's scaling for the workshop hours and PATCHes it back to zero when the day stack is destroyed.
// A day destroy can never delete a deployment: DeploymentScaling has no delete call, and the month's
// deployments ignore scaling changes (the day's scaling is not drift to revert).
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type DayConfig, type MonthConfig, type ServerlessConfig } from "../config";
import { DeploymentScaling, type ScalingInput } from "../providers";
import { ServerlessWorkers, deploymentName, type ServerlessWorkerOption } from "../../components/serverless-workers";
import { VerdaClient } from "../verda/client";
import type { VerdaCredentials } from "./live-sfs";
import type { ServerlessPlan } from "../money/model";
import { secretReference } from "./references";
import { appFilesNightlyHook, sfsOutputsNightlyHook } from "../../components/app-host-backup";
import type { BucketNames } from "../../components/backups";
import type { SshTarget } from "../../components/remote";

/** The default worker command: ComfyUI with the SFS's model paths and its outputs on the SFS (backed up nightly). */
export function defaultWorkerCommand(port: number, sfsMount: string): string[] {
  return ["python3", "/workspace/ComfyUI/main.py", "--listen", "0.0.0.0", "--port", String(port), "--extra-model-paths-config", `${sfsMount}/extra_model_paths.yaml`, "--output-directory", `${sfsMount}/outputs`];
}

const options = (sl: ServerlessConfig): ServerlessWorkerOption[] => sl.deployments.map((d) => ({ gpu: d.gpu, spot: d.spot, gpus: d.gpus }));

/** Zero replicas: the month's resting scaling, and what every day destroy returns to. */
export function restingScaling(sl: ServerlessConfig): ScalingInput {
  return { ...dayScaling(sl, 0), minReplicas: 0, maxReplicas: 0 };
}

/** The day's scaling of deployment `index` (its own min/max when set). */
export function dayScaling(sl: ServerlessConfig, index: number): ScalingInput {
  const d = sl.deployments[index]!;
  const s = sl.scaling;
  return {
    minReplicas: d.minReplicas ?? s.minReplicas,
    maxReplicas: d.maxReplicas ?? s.maxReplicas,
    scaleUpDelaySeconds: s.scaleUpDelaySeconds,
    scaleDownDelaySeconds: s.scaleDownDelaySeconds,
    queueLoadThreshold: s.queueLoadThreshold,
    concurrentRequestsPerReplica: s.concurrentRequestsPerReplica,
    queueMessageTtlSeconds: s.queueMessageTtlSeconds,
  };
}

/** The cost model's view of the day (infra/money/model.ts ServerlessPlan). */
export function serverlessPlanOf(sl: ServerlessConfig): ServerlessPlan {
  const names = serverlessDeploymentNames(sl);
  return {
    deployments: sl.deployments.map((d, i) => ({ name: names[i]!, gpu: d.gpu, gpus: d.gpus, spot: d.spot, minReplicas: dayScaling(sl, i).minReplicas })),
    prewarmMinutes: sl.prewarmMinutes,
    burstReplicaHours: sl.burstReplicaHours,
  };
}

export function serverlessDeploymentNames(sl: ServerlessConfig): string[] {
  return options(sl).map((o) => deploymentName(sl.namePrefix, o));
}

/** Month layer: the deployments at zero replicas, the SFS mounted by the month's SFS id. */
export function serverlessMonth(cfg: MonthConfig, sfsVolumeId: pulumi.Output<string>): Record<string, pulumi.Output<unknown>> {
  const sl = cfg.serverless;
  const sfsMount = cfg.paths.sfsMount;
  const workers = new ServerlessWorkers("serverless", {
    namePrefix: sl.namePrefix,
    options: options(sl),
    image: sl.image!,
    port: sl.port,
    command: sl.command ?? defaultWorkerCommand(sl.port, sfsMount),
    sfsVolumeId,
    sfsMountPath: sfsMount,
    env: { HF_HOME: `${sfsMount}/cache/huggingface` },
    secrets: cfg.hfToken ? { HF_TOKEN: secretOutput(cfg.hfToken) } : undefined,
    registry: sl.registry && cfg.registryToken ? { ...sl.registry, accessToken: secretOutput(cfg.registryToken) } : undefined,
    shmMb: sl.shmMb,
    scaling: restingScaling(sl),
    dayOwnsScaling: true,
  });
  return {
    inference: pulumi.output("serverless"),
    serverlessDeployments: pulumi.all(workers.deployments.map((d) => d.name)),
    serverlessEndpoints: pulumi.output(workers.endpoints),
  };
}

/**
 * Day layer: the day's scaling on each of the month's deployments. Before anything is declared, each
 * deployment is checked at Verda: it exists and mounts the month's current SFS (the API-level stand-in
 * for the instance path's `<sfs>/.comfyume/sfs-id` marker check, docs/configuration.md "Serverless").
 */
export function serverlessDay(cfg: DayConfig, month: pulumi.StackReference, idle: pulumi.StackReference, credentials: VerdaCredentials | undefined): Record<string, pulumi.Output<unknown>> {
  const sl = cfg.serverless;
  const names = serverlessDeploymentNames(sl);
  const monthNames = month.requireOutput("serverlessDeployments") as pulumi.Output<string[]>;
  const sfsId = month.requireOutput("sfsId") as pulumi.Output<string>;
  const checked = pulumi.all([monthNames, sfsId]).apply(async ([owned, sfs]) => {
    const missing = names.filter((n) => !owned.includes(n));
    if (missing.length > 0) {
      throw new Error(`the month stack owns no deployment ${missing.join(", ")} (it has ${owned.join(", ") || "none"}): make comfyume:serverless.deployments and namePrefix the same in both stack files, then run scripts/pulumi up --stack <env>-month`);
    }
    if (credentials) await checkDeploymentsMountSfs(credentials, names, sfs, cfg.paths.sfsMount);
    return names;
  });
  // The destroy deletes in reverse: the scalings (back to zero: no writer left, no GPU billing) before the backups.
  const backups = serverlessNightlyBackups(cfg, month, idle);
  const scalings = names.map(
    (name, i) =>
      new DeploymentScaling(`serverless-scaling-${name.slice(sl.namePrefix.length + 1)}`, { deployment: checked.apply(() => name), scaling: dayScaling(sl, i), restScaling: restingScaling(sl) }, { dependsOn: backups }),
  );
  return {
    inference: pulumi.output("serverless"),
    serverlessDeployments: pulumi.all(scalings.map((s) => s.deployment)),
    serverlessPrewarmMinutes: pulumi.output(sl.prewarmMinutes),
  };
}

/**
 * What the serverless day's destroy backs up, from the month's app host (app.host = verda, which mounts the
 * SFS): <sfs>/outputs (what the containers wrote; set sfs/outputs) and the app's users' files (sets app/<dir>),
 * both read back from R2 and hashed. None with serverless.outputsBackup = none (config refuses mello otherwise).
 */
function serverlessNightlyBackups(cfg: DayConfig, month: pulumi.StackReference, idle: pulumi.StackReference): pulumi.Resource[] {
  if (cfg.app.host !== "verda" || cfg.serverless.outputsBackup !== "app-host") return [];
  const out = <T>(ref: pulumi.StackReference, key: string) => ref.requireOutput(key) as pulumi.Output<T>;
  const target: SshTarget = {
    host: cfg.ssh.hostOverride ?? out<string>(month, "appIp"),
    port: cfg.ssh.port,
    user: cfg.ssh.user,
    hostKey: out<string>(month, "appHostKey"),
    privateKey: secretOutput(cfg.sshPrivateKey),
    dialErrorLimit: cfg.ssh.dialErrorLimit,
    perDialTimeout: cfg.ssh.perDialTimeout,
  };
  const r2 = {
    endpoint: out<string>(idle, "r2Endpoint"),
    accessKeyId: secretReference(idle, "r2AccessKeyId"),
    secretAccessKey: secretReference(idle, "r2SecretAccessKey"),
    bucket: pulumi.all([month.getOutput("appBackupBucket"), out<BucketNames>(idle, "bucketNames")]).apply(([own, names]) => (typeof own === "string" && own ? own : names.userFiles)),
  };
  const common = { target, r2, scriptsDir: cfg.paths.scriptsDir, hostEnv: cfg.hostEnv, backupSeconds: cfg.timeouts.backupSeconds, shrink: { tolerance: cfg.backup.shrinkTolerance, accept: cfg.backup.acceptShrink } };
  const monthStack = cfg.stackRefs.month.split("/").pop()!;
  const outputs = sfsOutputsNightlyHook("sfs-outputs-backup-before-delete", { ...common, sfsMount: cfg.paths.sfsMount, sfsId: out<string>(month, "sfsId"), monthStack }, {});
  // One after the other: backup-mello.sh holds one lock per host, so a second run at once is refused.
  const appFiles = appFilesNightlyHook("app-files-backup-before-delete", { ...common, dataDir: out<string>(month, "appDataDir"), dataDirs: out<string[]>(month, "appDataDirs") }, { dependsOn: [outputs] });
  return [outputs, appFiles];
}

/** Each deployment exists and mounts `sfsId` at the SFS mount path, and that SFS is alive at Verda. */
export async function checkDeploymentsMountSfs(credentials: VerdaCredentials, names: string[], sfsId: string, sfsMount: string): Promise<void> {
  const client = new VerdaClient(credentials);
  const volume = await client.getVolume(sfsId);
  if (!volume || String(volume.status) === "deleted") {
    throw new Error(`the month's SFS ${sfsId} does not exist at Verda: bring the month stack up first (scripts/pulumi up --stack <env>-month)`);
  }
  for (const name of names) {
    const live = await client.serverless.getDeployment(name);
    if (!live) throw new Error(`deployment ${name} does not exist at Verda: run scripts/pulumi up --refresh --stack <env>-month to re-create it`);
    const mounts = live.containers.flatMap((c) => c.volume_mounts ?? []);
    const shared = mounts.find((m) => m.type === "shared" && m.mount_path === sfsMount) as { volume_id?: string } | undefined;
    if (shared?.volume_id !== sfsId) {
      throw new Error(
        `deployment ${name} mounts ${shared?.volume_id ?? "no SFS"} at ${sfsMount}, not the month's SFS ${sfsId} (a console edit, or an SFS re-created): ` +
          "its workers would read other models and write outputs the nightly backup never sees. Run scripts/pulumi up --refresh --stack <env>-month to put the month's SFS back",
      );
    }
  }
}
