// Instances: deploy, lifecycle (ordered -> provisioning -> running), billing, rendering.
import { randomBytes, randomUUID } from "node:crypto";
import { findImage, findInstanceType, findVolumeType, hardware, INSTANCE_TYPES, LOCATIONS } from "./catalogue";
import { bodyObject, fail, ok, type ApiResponse } from "./http";
import { toTags, UUID_RE, type Sim } from "./state";
import type { InstanceRecord, InstanceView, VolumeRecord } from "./types";
import { addVolume, attachNow, deleteVolumeNow, detachNow, isDeleted, isShared, requireSize } from "./volumes";

const CREATED_BY = "7dfc2631-0158-4f74-93f6-6b46dcb90fef";
const DEFAULT_OS_VOLUME_GB = 50;

/** CLI rule (verda-api.md §5): letters, digits and '-', no leading/trailing '-', at least one letter; a DNS label. */
export function hostnameProblem(hostname: string): string | null {
  if (hostname.length === 0 || hostname.length > 63) return "hostname must be 1-63 characters";
  if (!/^[A-Za-z0-9-]+$/.test(hostname)) return "hostname may only contain letters, digits and '-'";
  if (hostname.startsWith("-") || hostname.endsWith("-")) return "hostname must not start or end with '-'";
  if (!/[A-Za-z]/.test(hostname)) return "hostname must contain at least one letter";
  return null;
}

function capacityAvailable(sim: Sim, instanceType: string, location: string): boolean {
  if (sim.faults.noCapacity(instanceType, location, false)) return false;
  const cap = sim.opts.capacity;
  return cap === null || (cap[location] ?? []).includes(instanceType);
}

export function availableTypes(sim: Sim, location: string): string[] {
  const cap = sim.opts.capacity;
  const base = cap === null ? INSTANCE_TYPES.map((t) => t.instance_type) : (cap[location] ?? []);
  return base.filter((t) => !sim.faults.noCapacity(t, location, false));
}

export function isAvailable(sim: Sim, instanceType: string, location: string): boolean {
  return capacityAvailable(sim, instanceType, location);
}

// ---------------------------------------------------------------- rendering

export function attachedVolumes(sim: Sim, instanceId: string): VolumeRecord[] {
  return [...sim.volumes.values()].filter((v) => v.instance_ids.includes(instanceId));
}

export function instanceView(sim: Sim, i: InstanceRecord): InstanceView {
  const t = findInstanceType(i.instance_type)!;
  const vols = attachedVolumes(sim, i.id).sort((a, b) => Number(b.is_os_volume) - Number(a.is_os_volume));
  return {
    id: i.id,
    ip: i.ip,
    status: i.status,
    created_at: i.created_at,
    created_by_user_id: CREATED_BY,
    ...hardware(t),
    hostname: i.hostname,
    description: i.description,
    tags: i.tags,
    location: i.location,
    price_per_hour: i.price_per_hour,
    is_spot: i.is_spot,
    instance_type: i.instance_type,
    image: i.image,
    os_name: i.os_name,
    startup_script_id: i.startup_script_id,
    ssh_key_ids: i.ssh_key_ids,
    os_volume_id: i.os_volume_id,
    jupyter_token: i.jupyter_token,
    contract: i.contract,
    pricing: "FIXED_PRICE",
    volume_ids: vols.map((v) => v.id),
  };
}

export function getInstance(sim: Sim, id: string): InstanceRecord {
  if (!UUID_RE.test(id)) throw fail.badRequest("Invalid instance id");
  const i = sim.instances.get(id);
  if (!i || i.deleted) throw fail.notFound("Instance not found");
  return i;
}

export function listInstances(sim: Sim, query: URLSearchParams): ApiResponse {
  const status = query.get("status");
  const computeId = query.get("computeId");
  const tagFilters = query.getAll("tag").map((t) => {
    const eq = t.indexOf("=");
    return eq < 0 ? { key: t.toLowerCase(), value: undefined } : { key: t.slice(0, eq).toLowerCase(), value: t.slice(eq + 1) };
  });
  const list = [...sim.instances.values()].filter(
    (i) =>
      !i.deleted &&
      (!status || i.status === status) &&
      (!computeId || i.id === computeId) &&
      tagFilters.every((f) => i.tags.some((t) => t.key === f.key && (f.value === undefined || t.value === f.value))),
  );
  return ok(list.map((i) => instanceView(sim, i)));
}

// ---------------------------------------------------------------- deploy

export function stringList(raw: unknown, field: string): string[] {
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.some((x) => typeof x !== "string")) throw fail.badRequest(`${field} must be a string or an array of strings`);
  return list as string[];
}

function requireString(b: Record<string, unknown>, field: string): string {
  const v = b[field];
  if (typeof v !== "string" || v.trim() === "") throw fail.badRequest(`${field} is required`);
  return v;
}

export function deployInstance(sim: Sim, body: unknown): { id: string } {
  const b = bodyObject(body);
  const typeName = requireString(b, "instance_type");
  const imageRef = requireString(b, "image");
  const hostname = requireString(b, "hostname");
  const location = requireString(b, "location_code");
  const type = findInstanceType(typeName);
  if (!type) throw fail.badRequest(`Invalid instance type: ${typeName}`);
  if (!LOCATIONS.some((l) => l.code === location)) throw fail.badRequest(`Invalid location_code: ${location}`);
  const hostProblem = hostnameProblem(hostname);
  if (hostProblem) throw fail.badRequest(hostProblem);
  if (b.description !== undefined && b.description !== null && typeof b.description !== "string") throw fail.badRequest("description must be a string");

  // `image` is an image type, an image id, or a detached OS volume to boot from.
  const image = findImage(imageRef);
  let bootVolume: VolumeRecord | undefined;
  if (!image) {
    bootVolume = sim.volumes.get(imageRef);
    if (!bootVolume || !bootVolume.is_os_volume || isDeleted(bootVolume)) throw fail.badRequest(`Invalid image: ${imageRef}`);
    if (bootVolume.instance_ids.length > 0 || bootVolume.status !== "detached") throw fail.badRequest(`Volume ${imageRef} is not detached`);
    if (bootVolume.location !== location) {
      throw fail.badRequest(`Volume location (${bootVolume.location}) does not match instance location (${location})`);
    }
  } else if (!type.supported_os.includes(image.image_type)) {
    throw fail.badRequest(`Image ${image.image_type} is not supported on ${typeName}`);
  }

  const sshKeyIds = stringList(b.ssh_key_ids, "ssh_key_ids");
  for (const id of sshKeyIds) if (!sim.sshKeys.has(id)) throw fail.badRequest(`SSH key not found: ${id}`);
  const scriptId = b.startup_script_id ?? null;
  if (scriptId !== null && (typeof scriptId !== "string" || !sim.scripts.has(scriptId))) {
    throw fail.badRequest(`Startup script not found: ${String(scriptId)}`);
  }

  let osVolume: { name: string; size: number } | null = null;
  if (!bootVolume) {
    const ov = b.os_volume === undefined || b.os_volume === null ? {} : bodyObject(b.os_volume);
    osVolume = {
      name: typeof ov.name === "string" && ov.name !== "" ? ov.name : `OS-NVMe-${randomBytes(4).toString("hex")}`,
      size: ov.size === undefined ? DEFAULT_OS_VOLUME_GB : requireSize(ov.size, "os_volume.size"),
    };
  }
  const newVolumes = (Array.isArray(b.volumes) ? b.volumes : b.volumes == null ? [] : null)?.map((raw) => {
    const vb = bodyObject(raw);
    const vt = typeof vb.type === "string" ? findVolumeType(vb.type) : undefined;
    if (!vt || !vt.creatable) throw fail.badRequest(`Invalid volume type: ${String(vb.type)}`);
    if (typeof vb.name !== "string" || vb.name === "") throw fail.badRequest("volumes[].name is required");
    return { name: vb.name, size: requireSize(vb.size, "volumes[].size"), type: vt.type };
  });
  if (!newVolumes) throw fail.badRequest("volumes must be an array");
  const existing = stringList(b.existing_volumes, "existing_volumes").map((id) => {
    const v = sim.volumes.get(id);
    if (!v || isDeleted(v)) throw fail.badRequest(`Volume not found: ${id}`);
    if (v.location !== location) throw fail.badRequest(`Volume location (${v.location}) does not match instance location (${location})`);
    if (!isShared(v) && (v.instance_ids.length > 0 || v.status !== "detached")) throw fail.badRequest(`Volume ${id} is not detached`);
    return v;
  });
  const contract = b.contract ?? (b.is_spot === true ? "SPOT" : "PAY_AS_YOU_GO");
  if (!["LONG_TERM", "PAY_AS_YOU_GO", "SPOT"].includes(contract as string)) throw fail.badRequest(`Invalid contract: ${String(contract)}`);
  if (b.is_spot !== undefined && b.is_spot !== null && typeof b.is_spot !== "boolean") throw fail.badRequest("is_spot must be a boolean");
  const tags = toTags(b.tags);

  if (sim.billing.balance() <= 0) throw fail.funds();
  if (!capacityAvailable(sim, typeName, location)) {
    sim.faults.noCapacity(typeName, location, true);
    throw fail.unavailable("No capacity available");
  }

  const isSpot = b.is_spot === true;
  const inst: InstanceRecord = {
    id: randomUUID(),
    instance_type: typeName,
    image: bootVolume ? bootVolume.id : image!.image_type,
    os_name: image ? image.name : "Custom OS volume",
    hostname,
    description: typeof b.description === "string" ? b.description : "",
    location,
    is_spot: isSpot,
    contract: contract as InstanceRecord["contract"],
    status: "ordered",
    ip: null,
    os_volume_id: null,
    startup_script_id: scriptId as string | null,
    ssh_key_ids: sshKeyIds,
    tags,
    created_at: sim.clock.iso(),
    jupyter_token: randomBytes(16).toString("hex"),
    price_per_hour: isSpot ? type.spot : type.price,
    fate: sim.faults.takeInstanceOutcome(typeName, hostname, location) ?? "normal",
    pending: { os_volume: osVolume, boot_volume_id: bootVolume?.id ?? null, volumes: newVolumes, existing_volumes: existing.map((v) => v.id) },
    deleted: false,
    announced: false,
  };
  sim.instances.set(inst.id, inst);
  // Reserve the volumes now so nothing else takes them before provisioning.
  for (const v of existing) if (!isShared(v)) v.status = "attaching";
  if (bootVolume) bootVolume.status = "attaching";
  sim.schedule(sim.opts.timing.orderedMs, () => startProvisioning(sim, inst));
  return { id: inst.id };
}

export const stillOurs = (inst: InstanceRecord, status: InstanceRecord["status"]) => !inst.deleted && inst.status === status;

export function releasePending(sim: Sim, inst: InstanceRecord): void {
  const ids = [...inst.pending.existing_volumes, ...(inst.pending.boot_volume_id ? [inst.pending.boot_volume_id] : [])];
  for (const id of ids) {
    const v = sim.volumes.get(id);
    if (v && v.status === "attaching" && v.instance_ids.length === 0) v.status = "detached";
  }
}

function startProvisioning(sim: Sim, inst: InstanceRecord): void {
  if (!stillOurs(inst, "ordered")) return;
  if (inst.fate === "no_capacity") {
    inst.status = "no_capacity";
    releasePending(sim, inst);
    return;
  }
  inst.status = "provisioning";
  const p = inst.pending;
  if (p.boot_volume_id) {
    const boot = sim.volumes.get(p.boot_volume_id)!;
    attachNow(sim, boot, inst.id, "vda");
    boot.ssh_key_ids = inst.ssh_key_ids;
    inst.os_volume_id = boot.id;
  } else if (p.os_volume) {
    const os = addVolume(sim, { ...p.os_volume, type: "NVMe", location: inst.location, is_os_volume: true, status: "attached", ssh_key_ids: inst.ssh_key_ids });
    attachNow(sim, os, inst.id, "vda");
    inst.os_volume_id = os.id;
  }
  for (const spec of p.volumes) {
    const v = addVolume(sim, { ...spec, location: inst.location, status: "attached" });
    attachNow(sim, v, inst.id);
  }
  for (const id of p.existing_volumes) {
    const v = sim.volumes.get(id);
    if (v && !isDeleted(v)) attachNow(sim, v, inst.id);
  }
  if (sim.opts.ipAssignedAt === "provisioning") inst.ip = sim.nextIp();
  sim.schedule(sim.opts.timing.provisioningMs, () => finishProvisioning(sim, inst));
}

function finishProvisioning(sim: Sim, inst: InstanceRecord): void {
  if (!stillOurs(inst, "provisioning")) return;
  switch (inst.fate) {
    case "stuck_provisioning":
      return;
    case "error":
    case "installation_failed":
      inst.status = inst.fate;
      return;
    default:
      becomeRunning(sim, inst);
  }
}

export function becomeRunning(sim: Sim, inst: InstanceRecord): void {
  const first = !inst.announced;
  inst.status = "running";
  if (inst.ip === null) inst.ip = sim.nextIp();
  sim.billing.start("instance", inst.id, `instance ${inst.hostname} (${inst.instance_type}, ${inst.location})`, inst.price_per_hour);
  if (first) {
    inst.announced = true;
    const hook = sim.opts.onInstanceRunning;
    if (hook) {
      Promise.resolve()
        .then(() => hook(instanceView(sim, inst)))
        .catch((err: unknown) => sim.opts.log(`onInstanceRunning failed: ${String(err)}`));
    }
  }
}

/** Spot eviction (or any discontinuation): billing stops, volumes are detached (on_spot_discontinue keep_detached). */
export function discontinue(sim: Sim, inst: InstanceRecord): void {
  inst.status = "discontinued";
  sim.billing.stop(inst.id);
  releasePending(sim, inst);
  for (const v of attachedVolumes(sim, inst.id)) detachNow(v, inst.id);
}

/** Live: at zero balance instances are discontinued and volumes go to trash (verda-api.md §11.3). */
export function enforceZeroBalance(sim: Sim): void {
  if (!sim.opts.discontinueAtZeroBalance || sim.billing.balance() > 0) return;
  for (const inst of sim.instances.values()) {
    if (!inst.deleted && inst.status !== "discontinued" && inst.status !== "deleting") discontinue(sim, inst);
  }
  for (const v of sim.volumes.values()) if (!isDeleted(v)) deleteVolumeNow(sim, v, false);
}
