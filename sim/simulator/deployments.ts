// Serverless container deployments: create/get/list/patch/delete, scaling, status and replicas. Replicas
// follow min_replica_count (no request queue is simulated): a new replica is `initializing` for the
// cold-start delay, then `running` and billed per replica-hour (compute price × size, spot price with
// is_spot) until it is terminated by scaling down, a restart after a change, or the delete.
import { randomBytes } from "node:crypto";
import { bodyObject, empty, fail, ok, type ApiResponse } from "./http";
import type { Sim } from "./state";
import type { Schemas } from "./types";

/** The generated shapes carry an index signature; keep only their named fields. */
type Known<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
/** The document types `image` as an object; its example is `{image, last_updated_at}`. */
export type ContainerView = Omit<Known<Schemas["ContainerPublicApiResponseDto"]>, "image"> & { image: { image: string; last_updated_at: string } };
type Scaling = Schemas["ScalingOptionsPublicApiDto"];
type Registry = Schemas["ContainerRegistrySettingsPublicApiDto"];

export interface ReplicaRecord {
  id: string;
  status: "initializing" | "running";
  started_at: string;
}

export interface DeploymentRecord {
  name: string;
  created_at: string;
  is_spot: boolean;
  compute: Schemas["ComputeResource"];
  container_registry_settings: Registry;
  containers: ContainerView[];
  scaling: Scaling;
  replicas: ReplicaRecord[];
  /** Real ms until which the status reads `updating` after a change that restarts replicas. */
  updatingUntil: number;
}

/** Serverless compute per GPU, $/h for one GPU (on-demand, spot). H100 as in verda-api.md §9.1; others are simulator figures. */
export const SERVERLESS_COMPUTE: Record<string, { price: number; spot: number }> = {
  H100: { price: 1.75, spot: 0.87 },
  H200: { price: 2.49, spot: 1.25 },
  B200: { price: 3.49, spot: 1.75 },
  B300: { price: 4.49, spot: 2.25 },
  A100: { price: 1.29, spot: 0.65 },
  "RTX PRO 6000": { price: 1.529, spot: 0.7645 },
};

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MEMORY_SIZES = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];

export function getDeployment(sim: Sim, name: string): DeploymentRecord {
  const d = sim.deployments.get(name);
  if (!d) throw fail.notFound(`Deployment not found: ${name}`);
  return d;
}

export function deploymentView(d: DeploymentRecord): Schemas["DeploymentPublicApiResponseDto"] {
  return {
    name: d.name,
    containers: d.containers.map((c) => structuredClone(c)) as unknown as Schemas["ContainerPublicApiResponseDto"][],
    endpoint_base_url: `https://containers.datacrunch.io/${d.name}`,
    created_at: d.created_at,
    compute: { ...d.compute },
    container_registry_settings: structuredClone(d.container_registry_settings),
    is_spot: d.is_spot,
  };
}

export function replicaPricePerHour(d: DeploymentRecord): number {
  const compute = SERVERLESS_COMPUTE[d.compute.name]!;
  return (d.is_spot ? compute.spot : compute.price) * d.compute.size;
}

// ---------------------------------------------------------------- validation

function numberField(b: Record<string, unknown>, field: string, min = 0): number {
  const v = b[field];
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) throw fail.badRequest(`${field} must be a number ≥ ${min}`);
  return v;
}

function checkCompute(raw: unknown): Schemas["ComputeResource"] {
  const c = bodyObject(raw);
  if (typeof c.name !== "string" || !SERVERLESS_COMPUTE[c.name]) throw fail.badRequest(`Unknown compute resource: ${String(c.name)} (known: ${Object.keys(SERVERLESS_COMPUTE).join(", ")})`);
  const size = c.size === undefined ? 1 : numberField(c, "size", 1);
  if (!Number.isInteger(size)) throw fail.badRequest("compute.size must be a whole number");
  return { name: c.name, size };
}

function checkRegistry(sim: Sim, raw: unknown): Registry {
  const r = bodyObject(raw);
  if (typeof r.is_private !== "boolean") throw fail.badRequest("container_registry_settings.is_private is required");
  const credentials = r.credentials === undefined ? undefined : bodyObject(r.credentials);
  if (r.is_private && (typeof credentials?.name !== "string" || !sim.registryCredentials.has(credentials.name))) {
    throw fail.badRequest(`Registry credentials not found: ${String(credentials?.name)}`);
  }
  return { is_private: r.is_private, credentials: { name: typeof credentials?.name === "string" ? credentials.name : "" } };
}

function checkEnv(sim: Sim, raw: unknown): Schemas["EnvVarPublicApi"][] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw fail.badRequest("env must be an array");
  return raw.map((e) => {
    const v = bodyObject(e);
    if (typeof v.name !== "string" || v.name === "") throw fail.badRequest("env name is required");
    if (v.type !== "plain" && v.type !== "secret") throw fail.badRequest(`env ${v.name}: type must be plain or secret`);
    if (typeof v.value_or_reference_to_secret !== "string") throw fail.badRequest(`env ${v.name}: value_or_reference_to_secret is required`);
    if (v.type === "secret" && !sim.secrets.has(v.value_or_reference_to_secret)) throw fail.badRequest(`env ${v.name}: secret not found: ${v.value_or_reference_to_secret}`);
    return { name: v.name, type: v.type, value_or_reference_to_secret: v.value_or_reference_to_secret };
  });
}

function checkMounts(sim: Sim, raw: unknown): NonNullable<ContainerView["volume_mounts"]> {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw fail.badRequest("volume_mounts must be an array");
  return raw.map((m) => {
    const v = bodyObject(m);
    if (typeof v.mount_path !== "string" || !v.mount_path.startsWith("/")) throw fail.badRequest("volume mount_path must be an absolute path");
    switch (v.type) {
      case "scratch":
        return { type: "scratch", mount_path: v.mount_path };
      case "memory":
        if (!MEMORY_SIZES.includes(v.size_in_mb as number)) throw fail.badRequest(`memory size_in_mb must be one of ${MEMORY_SIZES.join(", ")}`);
        return { type: "memory", mount_path: v.mount_path, size_in_mb: v.size_in_mb as 64 };
      case "secret":
        if (typeof v.secret_name !== "string" || !sim.fileSecrets.has(v.secret_name)) throw fail.badRequest(`File secret not found: ${String(v.secret_name)}`);
        return { type: "secret", mount_path: v.mount_path, secret_name: v.secret_name };
      case "shared": {
        const volume = typeof v.volume_id === "string" ? sim.volumes.get(v.volume_id) : undefined;
        if (!volume || volume.type !== "NVMe_Shared" || volume.trashed_at !== null || volume.is_permanently_deleted) {
          throw fail.badRequest(`Shared volume not found: ${String(v.volume_id)}`);
        }
        return { type: "shared", mount_path: v.mount_path, volume_id: volume.id };
      }
      default:
        throw fail.badRequest(`Unknown volume mount type: ${String(v.type)}`);
    }
  });
}

function checkEntrypoint(raw: unknown): Schemas["EntrypointOverridesSettings"] | undefined {
  if (raw === undefined) return undefined;
  const e = bodyObject(raw);
  if (typeof e.enabled !== "boolean") throw fail.badRequest("entrypoint_overrides.enabled is required");
  const list = (field: string) => (e[field] === undefined ? undefined : Array.isArray(e[field]) && (e[field] as unknown[]).every((x) => typeof x === "string") ? (e[field] as string[]) : (() => { throw fail.badRequest(`entrypoint_overrides.${field} must be an array of strings`); })());
  return { enabled: e.enabled, entrypoint: list("entrypoint"), cmd: list("cmd") };
}

function checkHealthcheck(raw: unknown): Schemas["HealthcheckSettings"] | undefined {
  if (raw === undefined) return undefined;
  const h = bodyObject(raw);
  if (typeof h.enabled !== "boolean" || typeof h.path !== "string") throw fail.badRequest("healthcheck needs enabled, port and path");
  return { enabled: h.enabled, port: numberField(h, "port", 1), path: h.path };
}

/** Applies one container body (create: every field; patch: only the fields sent) onto a view. */
function applyContainer(sim: Sim, target: ContainerView, b: Record<string, unknown>, creating: boolean): void {
  if (creating || b.image !== undefined) {
    if (typeof b.image !== "string" || b.image.trim() === "") throw fail.badRequest("container image is required");
    target.image = { image: b.image, last_updated_at: sim.clock.iso() };
  }
  if (creating || b.exposed_port !== undefined) target.exposed_port = numberField(b, "exposed_port", 1);
  if (b.should_use_cached_image !== undefined) target.should_use_cached_image = b.should_use_cached_image === true;
  if (creating || b.healthcheck !== undefined) target.healthcheck = checkHealthcheck(b.healthcheck) ?? { enabled: false, port: target.exposed_port, path: "/" };
  if (creating || b.entrypoint_overrides !== undefined) target.entrypoint_overrides = checkEntrypoint(b.entrypoint_overrides) ?? { enabled: false };
  if (creating || b.env !== undefined) target.env = checkEnv(sim, b.env);
  if (creating || b.volume_mounts !== undefined) target.volume_mounts = checkMounts(sim, b.volume_mounts);
}

function checkScaling(raw: unknown, base?: Scaling): Scaling {
  const s = bodyObject(raw);
  const pick = (field: keyof Scaling) => (s[field] === undefined && base ? base[field] : undefined);
  const num = (field: "min_replica_count" | "max_replica_count" | "queue_message_ttl_seconds" | "concurrent_requests_per_replica", min: number) =>
    (pick(field) as number | undefined) ?? numberField(s, field, min);
  const policy = (field: "scale_up_policy" | "scale_down_policy") => (pick(field) as Schemas["ScalingPolicy"] | undefined) ?? { delay_seconds: numberField(bodyObject(s[field]), "delay_seconds") };
  const triggers = bodyObject(s.scaling_triggers ?? {});
  const utilization = (t: unknown, old?: Schemas["UtilizationScalingTrigger"]) => (t === undefined ? (old ?? { enabled: false, threshold: 80 }) : { enabled: bodyObject(t).enabled === true, threshold: numberField(bodyObject(t), "threshold") });
  const queueLoad = triggers.queue_load === undefined ? base?.scaling_triggers.queue_load : { threshold: numberField(bodyObject(triggers.queue_load), "threshold") };
  if (!queueLoad) throw fail.badRequest("scaling_triggers.queue_load is required");
  const scaling: Scaling = {
    min_replica_count: num("min_replica_count", 0),
    max_replica_count: num("max_replica_count", 0),
    scale_up_policy: policy("scale_up_policy"),
    scale_down_policy: policy("scale_down_policy"),
    queue_message_ttl_seconds: num("queue_message_ttl_seconds", 1),
    concurrent_requests_per_replica: num("concurrent_requests_per_replica", 1),
    scaling_triggers: {
      queue_load: queueLoad,
      cpu_utilization: utilization(triggers.cpu_utilization, base?.scaling_triggers.cpu_utilization),
      gpu_utilization: utilization(triggers.gpu_utilization, base?.scaling_triggers.gpu_utilization),
    },
  };
  if (scaling.min_replica_count > scaling.max_replica_count) throw fail.badRequest("min_replica_count must not exceed max_replica_count");
  return scaling;
}

// ---------------------------------------------------------------- replicas

function startReplica(sim: Sim, d: DeploymentRecord): void {
  const replica: ReplicaRecord = { id: randomBytes(3).toString("hex").slice(0, 5), status: "initializing", started_at: sim.clock.iso() };
  d.replicas.push(replica);
  sim.schedule(sim.opts.timing.replicaColdStartMs, () => {
    if (sim.deployments.get(d.name) !== d || !d.replicas.includes(replica)) return;
    replica.status = "running";
    replica.started_at = sim.clock.iso();
    sim.billing.start("replica", `${d.name}/${replica.id}`, `replica ${replica.id} of ${d.name} (${d.compute.size}× ${d.compute.name}${d.is_spot ? ", spot" : ""})`, replicaPricePerHour(d));
  });
}

function stopReplica(sim: Sim, d: DeploymentRecord, replica: ReplicaRecord): void {
  sim.billing.stop(`${d.name}/${replica.id}`);
  d.replicas = d.replicas.filter((r) => r !== replica);
}

/** Brings the replica count to min_replica_count (newest replicas go first when scaling down). */
function reconcile(sim: Sim, d: DeploymentRecord): void {
  const desired = Math.min(d.scaling.min_replica_count, d.scaling.max_replica_count);
  while (d.replicas.length > desired) stopReplica(sim, d, d.replicas[d.replicas.length - 1]!);
  while (d.replicas.length < desired) startReplica(sim, d);
}

function restartReplicas(sim: Sim, d: DeploymentRecord): void {
  for (const r of [...d.replicas]) stopReplica(sim, d, r);
  d.updatingUntil = Date.now() + sim.opts.timing.replicaColdStartMs;
  reconcile(sim, d);
}

// ---------------------------------------------------------------- handlers

export function createDeployment(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  if (typeof b.name !== "string" || !NAME_RE.test(b.name)) throw fail.badRequest("name must be 1-63 lowercase letters, digits or '-' (not at either end)");
  if (sim.deployments.has(b.name)) return { status: 409, json: { code: "conflict", message: `Deployment ${b.name} already exists` } };
  if (!Array.isArray(b.containers) || b.containers.length === 0) throw fail.badRequest("containers must be a non-empty array");
  const containers = b.containers.map((raw, index) => {
    const image = typeof bodyObject(raw).image === "string" ? String(bodyObject(raw).image) : "";
    const base = image.split("/").pop()?.split(/[:@]/)[0] || "container";
    const view = { name: `${base}-${index}`, should_use_cached_image: true } as unknown as ContainerView;
    applyContainer(sim, view, bodyObject(raw), true);
    return view;
  });
  const d: DeploymentRecord = {
    name: b.name,
    created_at: sim.clock.iso(),
    is_spot: b.is_spot === true,
    compute: checkCompute(b.compute),
    container_registry_settings: checkRegistry(sim, b.container_registry_settings),
    containers,
    scaling: checkScaling(b.scaling),
    replicas: [],
    updatingUntil: 0,
  };
  sim.deployments.set(d.name, d);
  reconcile(sim, d);
  return ok(deploymentView(d), 201);
}

export function patchDeployment(sim: Sim, name: string, body: unknown): ApiResponse {
  const d = getDeployment(sim, name);
  const b = bodyObject(body);
  // Validate everything on a copy first, so a bad field changes nothing.
  const next: DeploymentRecord = structuredClone({ ...d, replicas: [] });
  if (b.containers !== undefined) {
    if (!Array.isArray(b.containers)) throw fail.badRequest("containers must be an array");
    for (const raw of b.containers) {
      const patch = bodyObject(raw);
      const target = next.containers.find((c) => c.name === patch.name);
      if (!target) throw fail.badRequest(`Container not found in ${name}: ${String(patch.name)}`);
      applyContainer(sim, target, patch, false);
    }
  }
  if (b.compute !== undefined) next.compute = checkCompute(b.compute);
  if (b.is_spot !== undefined) next.is_spot = b.is_spot === true;
  if (b.container_registry_settings !== undefined) next.container_registry_settings = checkRegistry(sim, b.container_registry_settings);
  const changed = JSON.stringify(deploymentView(next)) !== JSON.stringify(deploymentView(d));
  Object.assign(d, { containers: next.containers, compute: next.compute, is_spot: next.is_spot, container_registry_settings: next.container_registry_settings });
  if (changed) restartReplicas(sim, d);
  return ok(deploymentView(d));
}

export function deleteDeployment(sim: Sim, name: string): ApiResponse {
  const d = getDeployment(sim, name);
  for (const r of [...d.replicas]) stopReplica(sim, d, r);
  sim.deployments.delete(name);
  return empty(200);
}

export function patchScaling(sim: Sim, name: string, body: unknown): ApiResponse {
  const d = getDeployment(sim, name);
  d.scaling = checkScaling(body, d.scaling);
  reconcile(sim, d);
  return ok(d.scaling);
}

export function deploymentStatus(sim: Sim, name: string): Schemas["GetDeploymentStatusResponseDto"]["status"] {
  const d = getDeployment(sim, name);
  if (Date.now() < d.updatingUntil) return "updating";
  if (d.replicas.some((r) => r.status === "initializing")) return "initializing";
  return "healthy";
}

export function replicasView(sim: Sim, name: string): Schemas["ReplicasPublicApiDto"] {
  const d = getDeployment(sim, name);
  const image = d.containers[0]?.image.image ?? "";
  const [imageName, imageTag] = (image.split("/").pop() ?? "").split(":");
  return { list: d.replicas.map((r) => ({ id: r.id, status: r.status, started_at: r.started_at, image, image_name: imageName ?? "", image_tag: imageTag ?? "latest" })) };
}
