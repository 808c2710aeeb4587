// Inputs of a ContainerDeployment and their mapping to and from Verda's API shapes (types from the OpenAPI
// document). Pure functions: `toApi*` builds request bodies, `fromApi` turns a live deployment back into
// inputs so a console edit shows as a diff. Defaults are filled in by `normalize` so state and live agree.
import type { ComputeResource, ContainerDeployment, ContainerEnvVar, ContainerSpec, ContainerVolumeMount, CreateScalingOptions, ScalingOptions } from "../verda/types";

export type MountInput =
  | { type: "scratch"; path: string }
  | { type: "memory"; path?: string; sizeMb: number }
  | { type: "shared"; path: string; volumeId: string }
  | { type: "secret"; path: string; secretName: string };

export interface ContainerInput {
  image: string;
  /** The port the container serves on (exposed_port). */
  port: number;
  /** Health check path (enabled when set) and port (default: `port`). */
  healthcheck?: { path: string; port?: number };
  /** Entrypoint override (entrypoint_overrides.entrypoint). */
  entrypoint?: string[];
  /** Arguments (entrypoint_overrides.cmd). */
  command?: string[];
  /** Plain environment variables: never anything sensitive (check refuses token-like names). */
  env?: Record<string, string>;
  /** Environment variable → Verda secret name (a `Secret`'s `verdaName`), sent as type `secret`. */
  secretEnv?: Record<string, string>;
  mounts?: MountInput[];
  /** Pull through Verda's image cache (Docker Hub only; default true, as the API). */
  useCachedImage?: boolean;
}

export interface ScalingInput {
  minReplicas: number;
  maxReplicas: number;
  /** Defaults: 0 s up, 300 s down, queue TTL 36000 s, 1 request per replica, queue-load threshold 2. */
  scaleUpDelaySeconds?: number;
  scaleDownDelaySeconds?: number;
  queueMessageTtlSeconds?: number;
  concurrentRequestsPerReplica?: number;
  queueLoadThreshold?: number;
  /** Utilization triggers in percent; off when absent. */
  cpuUtilization?: number;
  gpuUtilization?: number;
}

export interface DeploymentShape {
  name: string;
  compute: ComputeResource;
  isSpot?: boolean;
  /** Verda name of registry credentials (a `RegistryCredentials`'s `verdaName`); public registry when absent. */
  registryCredentials?: string;
  containers: ContainerInput[];
  scaling: ScalingInput;
}

export const MEMORY_SIZES_MB = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];

/** Defaults made explicit (as Verda reports them), so a read of an unchanged deployment diffs clean. */
export function normalize<T extends DeploymentShape>(d: T): T {
  return {
    ...d,
    isSpot: d.isSpot ?? false,
    compute: d.compute && { name: d.compute.name, size: d.compute.size ?? 1 },
    containers: Array.isArray(d.containers)
      ? d.containers.map((c) => ({
          ...c,
          useCachedImage: c.useCachedImage ?? true,
          healthcheck: c.healthcheck && { path: c.healthcheck.path, port: c.healthcheck.port ?? c.port },
          mounts: c.mounts?.map((m) => (m.type === "memory" ? { ...m, path: m.path ?? "/dev/shm" } : m)),
        }))
      : d.containers,
    scaling: d.scaling && {
      ...d.scaling,
      scaleUpDelaySeconds: d.scaling.scaleUpDelaySeconds ?? 0,
      scaleDownDelaySeconds: d.scaling.scaleDownDelaySeconds ?? 300,
      queueMessageTtlSeconds: d.scaling.queueMessageTtlSeconds ?? 36000,
      concurrentRequestsPerReplica: d.scaling.concurrentRequestsPerReplica ?? 1,
      queueLoadThreshold: d.scaling.queueLoadThreshold ?? 2,
    },
  };
}

function envToApi(c: ContainerInput): ContainerEnvVar[] {
  const plain = Object.entries(c.env ?? {}).map(([name, value]): ContainerEnvVar => ({ name, type: "plain", value_or_reference_to_secret: value }));
  const secret = Object.entries(c.secretEnv ?? {}).map(([name, ref]): ContainerEnvVar => ({ name, type: "secret", value_or_reference_to_secret: ref }));
  return [...plain, ...secret];
}

function mountToApi(m: MountInput): ContainerVolumeMount {
  switch (m.type) {
    case "scratch":
      return { type: "scratch", mount_path: m.path };
    case "memory":
      return { type: "memory", mount_path: m.path ?? "/dev/shm", size_in_mb: m.sizeMb as 64 };
    case "shared":
      return { type: "shared", mount_path: m.path, volume_id: m.volumeId };
    case "secret":
      return { type: "secret", mount_path: m.path, secret_name: m.secretName };
  }
}

/** One container as sent on create and (with its `name`) on PATCH: every field, so a patch also reverts drift. */
export function containerToApi(c: ContainerInput): ContainerSpec {
  const overridden = (c.entrypoint?.length ?? 0) > 0 || (c.command?.length ?? 0) > 0;
  return {
    image: c.image,
    exposed_port: c.port,
    should_use_cached_image: c.useCachedImage ?? true,
    healthcheck: c.healthcheck ? { enabled: true, port: c.healthcheck.port ?? c.port, path: c.healthcheck.path } : { enabled: false, port: c.port, path: "/" },
    entrypoint_overrides: overridden ? { enabled: true, ...(c.entrypoint?.length ? { entrypoint: c.entrypoint } : {}), ...(c.command?.length ? { cmd: c.command } : {}) } : { enabled: false },
    env: envToApi(c),
    volume_mounts: (c.mounts ?? []).map(mountToApi),
  };
}

export function scalingToApi(s: ScalingInput): CreateScalingOptions {
  const n = normalize({ scaling: s } as DeploymentShape).scaling;
  const utilization = (threshold: number | undefined) => (threshold === undefined ? { enabled: false, threshold: 80 } : { enabled: true, threshold });
  return {
    min_replica_count: n.minReplicas,
    max_replica_count: n.maxReplicas,
    scale_up_policy: { delay_seconds: n.scaleUpDelaySeconds! },
    scale_down_policy: { delay_seconds: n.scaleDownDelaySeconds! },
    queue_message_ttl_seconds: n.queueMessageTtlSeconds!,
    concurrent_requests_per_replica: n.concurrentRequestsPerReplica!,
    scaling_triggers: { queue_load: { threshold: n.queueLoadThreshold! }, cpu_utilization: utilization(n.cpuUtilization), gpu_utilization: utilization(n.gpuUtilization) },
  };
}

export function registryToApi(credentials: string | undefined): { is_private: boolean; credentials: { name: string } } {
  return credentials ? { is_private: true, credentials: { name: credentials } } : { is_private: false, credentials: { name: "" } };
}

function imageOf(view: ContainerDeployment["containers"][number]): string {
  return typeof view.image === "string" ? view.image : (view.image?.image ?? "");
}

/** The live deployment (and its scaling) as inputs. */
export function fromApi(live: ContainerDeployment, scaling: ScalingOptions | undefined, fallback: ScalingInput): DeploymentShape {
  const containers = live.containers.map((c): ContainerInput => {
    const env = (c.env ?? []).filter((e) => e.type !== "secret");
    const secretEnv = (c.env ?? []).filter((e) => e.type === "secret");
    const overrides = c.entrypoint_overrides?.enabled ? c.entrypoint_overrides : undefined;
    const out: ContainerInput = { image: imageOf(c), port: c.exposed_port, useCachedImage: c.should_use_cached_image ?? true };
    if (c.healthcheck?.enabled) out.healthcheck = { path: c.healthcheck.path, port: c.healthcheck.port };
    if (overrides?.entrypoint?.length) out.entrypoint = overrides.entrypoint;
    if (overrides?.cmd?.length) out.command = overrides.cmd;
    if (env.length) out.env = Object.fromEntries(env.map((e) => [e.name, e.value_or_reference_to_secret]));
    if (secretEnv.length) out.secretEnv = Object.fromEntries(secretEnv.map((e) => [e.name, e.value_or_reference_to_secret]));
    if (c.volume_mounts?.length) out.mounts = c.volume_mounts.map(mountFromApi);
    return out;
  });
  const registry = live.container_registry_settings;
  return {
    name: live.name,
    compute: { name: live.compute.name, size: live.compute.size },
    isSpot: live.is_spot,
    ...(registry?.is_private && registry.credentials?.name ? { registryCredentials: registry.credentials.name } : {}),
    containers,
    scaling: scaling ? scalingFromApi(scaling) : fallback,
  };
}

function mountFromApi(m: ContainerVolumeMount): MountInput {
  switch (m.type) {
    case "scratch":
      return { type: "scratch", path: m.mount_path };
    case "memory":
      return { type: "memory", path: m.mount_path, sizeMb: (m as { size_in_mb: number }).size_in_mb };
    case "shared":
      return { type: "shared", path: m.mount_path, volumeId: (m as { volume_id: string }).volume_id };
    default:
      return { type: "secret", path: m.mount_path, secretName: (m as { secret_name: string }).secret_name };
  }
}

export function scalingFromApi(s: ScalingOptions): ScalingInput {
  const out: ScalingInput = {
    minReplicas: s.min_replica_count,
    maxReplicas: s.max_replica_count,
    scaleUpDelaySeconds: s.scale_up_policy.delay_seconds,
    scaleDownDelaySeconds: s.scale_down_policy.delay_seconds,
    queueMessageTtlSeconds: s.queue_message_ttl_seconds,
    concurrentRequestsPerReplica: s.concurrent_requests_per_replica,
    queueLoadThreshold: s.scaling_triggers.queue_load?.threshold ?? 2,
  };
  if (s.scaling_triggers.cpu_utilization?.enabled) out.cpuUtilization = s.scaling_triggers.cpu_utilization.threshold;
  if (s.scaling_triggers.gpu_utilization?.enabled) out.gpuUtilization = s.scaling_triggers.gpu_utilization.threshold;
  return out;
}
