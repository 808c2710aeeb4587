// Volumes: block (NVMe/HDD) and SFS (NVMe_Shared). Lifecycle, billing, actions and rendering.
import { randomBytes, randomUUID } from "node:crypto";
import { findVolumeType, HOURS_PER_MONTH, LOCATIONS } from "./catalogue";
import { bodyObject, fail, ok, type ApiResponse } from "./http";
import { toTags, UUID_RE, type Sim } from "./state";
import type { SfsPseudoPathFaultRule } from "./faults";
import type {
  InstanceRecord,
  TrashedVolumeView,
  VolumeInstanceRef,
  VolumeRecord,
  VolumeStatus,
  VolumeTypeName,
  VolumeView,
} from "./types";

const CREATED_BY = "7dfc2631-0158-4f74-93f6-6b46dcb90fef";
const eightChars = () => randomBytes(4).toString("hex");

export const isShared = (v: Pick<VolumeRecord, "type">) => findVolumeType(v.type)?.shared ?? v.type.includes("Shared");
export const isDeleted = (v: VolumeRecord) => v.status === "deleted";

export function monthlyPrice(v: Pick<VolumeRecord, "type" | "size">): number {
  return (findVolumeType(v.type)?.pricePerGbMonth ?? 0) * v.size;
}
export const hourlyPrice = (v: Pick<VolumeRecord, "type" | "size">) => monthlyPrice(v) / HOURS_PER_MONTH;

export function meterDescription(v: VolumeRecord): string {
  return `${v.is_os_volume ? "OS volume" : isShared(v) ? "SFS" : "volume"} ${v.name} (${v.type}, ${v.size} GB, ${v.location})`;
}

/** Creates a volume record and starts billing it. */
export function addVolume(
  sim: Sim,
  spec: { name: string; type: VolumeTypeName; size: number; location: string; is_os_volume?: boolean; status: VolumeStatus; tags?: VolumeRecord["tags"]; ssh_key_ids?: string[] },
): VolumeRecord {
  const v: VolumeRecord = {
    id: randomUUID(),
    name: spec.name,
    type: spec.type,
    size: spec.size,
    location: spec.location,
    status: spec.status,
    is_os_volume: spec.is_os_volume ?? false,
    instance_ids: [],
    device: null,
    pseudo_path: `volume-${eightChars()}`,
    created_at: sim.clock.iso(),
    ssh_key_ids: spec.ssh_key_ids ?? [],
    tags: spec.tags ?? [],
    trashed_at: null,
    is_permanently_deleted: false,
  };
  sim.volumes.set(v.id, v);
  sim.billing.start("volume", v.id, meterDescription(v), hourlyPrice(v));
  if (isShared(v)) scheduleSfsFaults(sim, sim.faults.sfsRules(), [v]);
  return v;
}

function nextDevice(sim: Sim, instanceId: string): string {
  const used = new Set([...sim.volumes.values()].filter((v) => v.instance_ids.includes(instanceId)).map((v) => v.device));
  for (let c = "b".charCodeAt(0); c <= "z".charCodeAt(0); c++) {
    const dev = `vd${String.fromCharCode(c)}`;
    if (!used.has(dev)) return dev;
  }
  throw fail.badRequest("Too many volumes attached to the instance");
}

/** Attaches immediately (used while provisioning an instance). */
export function attachNow(sim: Sim, v: VolumeRecord, instanceId: string, device?: string): void {
  if (!v.instance_ids.includes(instanceId)) v.instance_ids.push(instanceId);
  if (isShared(v)) {
    v.status = "exported";
  } else {
    v.device = device ?? nextDevice(sim, instanceId);
    v.status = "attached";
  }
}

/** Detaches from one instance (or all) immediately. */
export function detachNow(v: VolumeRecord, instanceId?: string): void {
  v.instance_ids = instanceId ? v.instance_ids.filter((id) => id !== instanceId) : [];
  if (v.instance_ids.length === 0) {
    v.device = null;
    if (!isDeleted(v)) v.status = "detached";
  }
}

/** Moves a volume to trash or deletes it permanently; detaches it first. */
export function deleteVolumeNow(sim: Sim, v: VolumeRecord, permanent: boolean): void {
  detachNow(v);
  v.status = "deleted";
  if (v.trashed_at === null) v.trashed_at = sim.clock.now();
  if (permanent) {
    v.is_permanently_deleted = true;
    sim.billing.stop(v.id);
  } else if (!sim.opts.trashBills) {
    sim.billing.stop(v.id);
  }
}

/** Volumes past the trash retention are deleted for good (checked lazily on each request). */
export function sweepTrash(sim: Sim): void {
  const now = sim.clock.now();
  for (const v of sim.volumes.values()) {
    if (v.trashed_at !== null && !v.is_permanently_deleted && now - v.trashed_at >= sim.opts.timing.trashRetentionSimMs) {
      deleteVolumeNow(sim, v, true);
    }
  }
}

// ---------------------------------------------------------------- SFS pseudo-path fault

export function scheduleSfsFaults(sim: Sim, rules: SfsPseudoPathFaultRule[], candidates: VolumeRecord[]): void {
  for (const rule of rules) {
    for (const v of candidates) {
      if (!sim.faults.sfsRules().includes(rule)) break; // exhausted
      if (!isShared(v) || isDeleted(v)) continue;
      if (rule.volume_id && rule.volume_id !== v.id) continue;
      if (rule.volume_name && rule.volume_name !== v.name) continue;
      sim.faults.consume(rule);
      sim.schedule(rule.after_ms ?? 0, () => {
        v.pseudo_path = `volume-${eightChars()}`;
        sim.opts.log(`fault: SFS ${v.id} pseudo path changed to ${v.pseudo_path}`);
      });
    }
  }
}

// ---------------------------------------------------------------- rendering

function nfsHost(location: string): string {
  return `nfs.${location.toLowerCase()}.datacrunch.io`;
}

function instanceRef(i: InstanceRecord): VolumeInstanceRef {
  return {
    id: i.id,
    auto_rental_extension: null,
    ip: i.ip,
    instance_type: i.instance_type,
    status: i.status,
    os_volume_id: i.os_volume_id,
    hostname: i.hostname,
  };
}

export function volumeView(sim: Sim, v: VolumeRecord): VolumeView | TrashedVolumeView {
  const instances = v.instance_ids.map((id) => sim.instances.get(id)).filter((i): i is InstanceRecord => !!i);
  const monthly = monthlyPrice(v);
  const target = isShared(v) ? `${nfsHost(v.location)}:/${v.pseudo_path}` : v.device;
  const common = {
    id: v.id,
    instance_id: v.instance_ids[0] ?? null,
    instances: instances.map(instanceRef),
    name: v.name,
    created_at: v.created_at,
    created_by_user_id: CREATED_BY,
    status: v.status,
    size: v.size,
    is_os_volume: v.is_os_volume,
    target,
    type: v.type,
    location: v.location,
    ssh_key_ids: v.ssh_key_ids,
    contract: "PAY_AS_YOU_GO",
    base_hourly_cost: monthly / HOURS_PER_MONTH,
    monthly_price: monthly,
    currency: sim.billing.currency,
    tags: v.tags,
  };
  if (isDeleted(v)) {
    return {
      ...common,
      deleted_at: new Date(v.trashed_at ?? sim.clock.now()).toISOString(),
      is_permanently_deleted: v.is_permanently_deleted,
    };
  }
  const mountPoint = "/mnt/volume";
  const source = `${nfsHost(v.location)}:${v.pseudo_path}`;
  const fstabLine = `${source} ${mountPoint} nfs defaults,nconnect=16 0 0`;
  return {
    ...common,
    pseudo_path: v.pseudo_path,
    create_directory_command: `mkdir -p ${mountPoint}`,
    mount_command: `mount -t nfs -o nconnect=16 ${source} ${mountPoint}`,
    filesystem_to_fstab_command: `grep -qxF '${fstabLine}' /etc/fstab || echo '${fstabLine}' | sudo tee -a /etc/fstab`,
    long_term: null,
  };
}

// ---------------------------------------------------------------- handlers

export function getVolume(sim: Sim, id: string): VolumeRecord {
  if (!UUID_RE.test(id)) throw fail.badRequest("Invalid volume id");
  const v = sim.volumes.get(id);
  if (!v) throw fail.notFound("Volume not found");
  return v;
}

export function listVolumes(sim: Sim, query: URLSearchParams): ApiResponse {
  const status = query.get("status");
  const list = [...sim.volumes.values()].filter((v) => !isDeleted(v) && (!status || v.status === status));
  return ok(list.map((v) => volumeView(sim, v)));
}

export function listTrash(sim: Sim): ApiResponse {
  const list = [...sim.volumes.values()].filter((v) => isDeleted(v) && !v.is_permanently_deleted);
  return ok(list.map((v) => volumeView(sim, v)));
}

export function requireLocation(code: unknown): string {
  if (typeof code !== "string" || code === "") throw fail.badRequest("location_code is required");
  if (!LOCATIONS.some((l) => l.code === code)) throw fail.badRequest(`Invalid location_code: ${code}`);
  return code;
}

export function requireSize(size: unknown, field = "size"): number {
  if (typeof size !== "number" || !Number.isFinite(size)) throw fail.badRequest(`${field} must be a number`);
  if (size <= 0) throw fail.badRequest(`${field} must be greater than 0`);
  if (!Number.isInteger(size)) throw fail.badRequest(`${field} must be a whole number of GB`);
  return size;
}

export function requireCreatableType(type: unknown): VolumeTypeName {
  const spec = typeof type === "string" ? findVolumeType(type) : undefined;
  if (!spec) throw fail.badRequest(`Invalid volume type: ${String(type)}`);
  if (!spec.creatable) throw fail.badRequest(`${spec.type} volumes can no longer be created`);
  return spec.type;
}

export function instanceIdsFrom(b: Record<string, unknown>): string[] {
  const ids: string[] = [];
  if (b.instance_id !== undefined && b.instance_id !== null) {
    if (typeof b.instance_id !== "string") throw fail.badRequest("instance_id must be a string");
    ids.push(b.instance_id);
  }
  if (b.instance_ids !== undefined && b.instance_ids !== null) {
    if (!Array.isArray(b.instance_ids) || b.instance_ids.some((x) => typeof x !== "string")) {
      throw fail.badRequest("instance_ids must be an array of strings");
    }
    ids.push(...(b.instance_ids as string[]));
  }
  return [...new Set(ids)];
}

export const LIVE_INSTANCE = (i: InstanceRecord | undefined): i is InstanceRecord => !!i && !i.deleted && i.status !== "deleting";

/** Checks that `v` may be attached to the given instances; returns them. */
export function checkAttachable(sim: Sim, v: Pick<VolumeRecord, "type" | "location">, instanceIds: string[]): InstanceRecord[] {
  const instances = instanceIds.map((id) => {
    const inst = sim.instances.get(id);
    if (!LIVE_INSTANCE(inst)) throw fail.notFound(`Instance ${id} not found`);
    return inst;
  });
  for (const inst of instances) {
    if (inst.location !== v.location) {
      throw fail.badRequest(`Volume location (${v.location}) does not match instance location (${inst.location})`);
    }
  }
  if (!isShared(v)) {
    if (instances.length > 1) throw fail.badRequest("A block volume can be attached to one instance only");
    if (instances.some((i) => i.status !== "offline")) {
      throw fail.forbidden("One or more of the specified instances is not shut down");
    }
  }
  return instances;
}

export function createVolume(sim: Sim, body: unknown): { id: string } {
  const b = bodyObject(body);
  const type = requireCreatableType(b.type);
  const location = requireLocation(b.location_code);
  const size = requireSize(b.size);
  if (typeof b.name !== "string" || b.name.trim() === "") throw fail.badRequest("name is required");
  const tags = toTags(b.tags);
  const instanceIds = instanceIdsFrom(b);
  checkAttachable(sim, { type, location }, instanceIds);
  if (sim.billing.balance() <= 0) throw fail.funds();
  const v = addVolume(sim, { name: b.name, type, size, location, status: "ordered", tags });
  sim.schedule(sim.opts.timing.volumeCreateMs, () => {
    if (isDeleted(v) || v.status !== "ordered") return;
    v.status = isShared(v) ? "created" : "detached";
    for (const id of instanceIds) if (LIVE_INSTANCE(sim.instances.get(id))) attachNow(sim, v, id);
  });
  return { id: v.id };
}
