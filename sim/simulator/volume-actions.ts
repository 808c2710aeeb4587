// Volume actions (PUT /v1/volumes) and DELETE /v1/volumes/{id}.
import { findVolumeType } from "./catalogue";
import { bodyObject, empty, fail, ok, type ApiResponse } from "./http";
import type { Sim } from "./state";
import type { VolumeRecord } from "./types";
import {
  addVolume,
  attachNow,
  checkAttachable,
  deleteVolumeNow,
  detachNow,
  getVolume,
  hourlyPrice,
  instanceIdsFrom,
  isDeleted,
  isShared,
  LIVE_INSTANCE,
  meterDescription,
  requireCreatableType,
  requireLocation,
  requireSize,
} from "./volumes";

function idsFrom(raw: unknown): string[] {
  const ids = Array.isArray(raw) ? raw : [raw];
  if (ids.length === 0 || ids.some((x) => typeof x !== "string")) throw fail.badRequest("id must be a volume id or an array of volume ids");
  return ids as string[];
}

/** PUT /v1/volumes. All targets are checked before any is changed. */
export function volumeAction(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  const action = b.action;
  const vols = idsFrom(b.id).map((id) => getVolume(sim, id));
  const live = (v: VolumeRecord) => {
    if (isDeleted(v)) throw fail.badRequest(`Volume ${v.id} is deleted`);
  };
  const t = sim.opts.timing;
  switch (action) {
    case "attach": {
      const instanceIds = instanceIdsFrom(b);
      if (instanceIds.length === 0) throw fail.badRequest("instance_id or instance_ids is required");
      for (const v of vols) {
        live(v);
        if (!isShared(v) && v.status !== "detached") throw fail.badRequest(`Volume ${v.id} is not detached (${v.status})`);
        if (isShared(v) && !["created", "exported", "detached"].includes(v.status)) throw fail.badRequest(`Volume ${v.id} is ${v.status}`);
        checkAttachable(sim, v, instanceIds);
      }
      for (const v of vols) {
        const before = v.status;
        v.status = "attaching";
        sim.schedule(t.volumeAttachMs, () => {
          if (v.status !== "attaching") return;
          v.status = before;
          for (const id of instanceIds) if (LIVE_INSTANCE(sim.instances.get(id))) attachNow(sim, v, id);
          if (v.instance_ids.length === 0) v.status = before;
        });
      }
      // An SFS attach was observed to answer `[null]` (verda-api.md §7.3).
      return vols.every(isShared) ? ok(vols.map(() => null), 202) : empty(202);
    }
    case "detach": {
      const instanceIds = instanceIdsFrom(b);
      for (const v of vols) {
        live(v);
        if (v.instance_ids.length === 0) throw fail.badRequest(`Volume ${v.id} is not attached`);
        if (!isShared(v)) {
          const inst = sim.instances.get(v.instance_ids[0]!);
          if (inst && !inst.deleted && inst.status !== "offline") throw fail.forbidden("One or more of the specified instances is not shut down");
        }
      }
      for (const v of vols) {
        const from = instanceIds.length > 0 ? instanceIds : [...v.instance_ids];
        v.status = "detaching";
        sim.schedule(t.volumeAttachMs, () => {
          if (v.status !== "detaching") return;
          for (const id of from) detachNow(v, id);
          if (v.instance_ids.length > 0) v.status = isShared(v) ? "exported" : "attached";
        });
      }
      return empty(202);
    }
    case "rename": {
      if (typeof b.name !== "string" || b.name.trim() === "") throw fail.badRequest("name is required");
      for (const v of vols) live(v);
      for (const v of vols) v.name = b.name;
      return empty(202);
    }
    case "resize": {
      const size = requireSize(b.size);
      for (const v of vols) {
        live(v);
        if (!findVolumeType(v.type)?.creatable) throw fail.badRequest(`${v.type} volumes can no longer be resized`);
        if (size < v.size) throw fail.badRequest("Can't be lower than current size");
      }
      for (const v of vols) {
        v.size = size;
        sim.billing.reprice(v.id, hourlyPrice(v), meterDescription(v));
      }
      return empty(202);
    }
    case "delete": {
      const permanent = b.is_permanent === true;
      for (const v of vols) {
        if (v.is_permanently_deleted || (isDeleted(v) && !permanent)) continue;
        if (!isShared(v) && v.instance_ids.length > 0) {
          const inst = sim.instances.get(v.instance_ids[0]!);
          if (inst && !inst.deleted && inst.status !== "offline") throw fail.forbidden("One or more of the specified instances is not shut down");
        }
      }
      for (const v of vols) if (!v.is_permanently_deleted) deleteVolumeNow(sim, v, permanent);
      return empty(202);
    }
    case "restore": {
      for (const v of vols) if (!isDeleted(v) || v.is_permanently_deleted) throw fail.badRequest(`Volume ${v.id} is not in trash`);
      for (const v of vols) {
        v.status = isShared(v) ? "created" : "detached";
        v.trashed_at = null;
        sim.billing.start("volume", v.id, meterDescription(v), hourlyPrice(v));
      }
      return empty(202);
    }
    case "clone": {
      for (const v of vols) {
        live(v);
        const inst = v.instance_ids.length > 0 && !isShared(v) ? sim.instances.get(v.instance_ids[0]!) : undefined;
        if (inst && !inst.deleted && inst.status !== "offline") throw fail.badRequest("Source volume must be detached or its instance shut down");
      }
      const type = b.type === undefined ? undefined : requireCreatableType(b.type);
      const location = b.location_code === undefined ? undefined : requireLocation(b.location_code);
      const ids = vols.map((src) => {
        const copy = addVolume(sim, {
          name: typeof b.name === "string" && b.name !== "" ? b.name : `${src.name}-clone`,
          type: type ?? src.type,
          size: src.size,
          location: location ?? src.location,
          status: "cloning",
        });
        sim.schedule(t.volumeCreateMs, () => {
          if (copy.status === "cloning") copy.status = isShared(copy) ? "created" : "detached";
        });
        return copy.id;
      });
      return ok(ids.length === 1 ? { id: ids[0] } : ids, 202);
    }
    default:
      throw fail.badRequest(`Unsupported volume action: ${String(action)}`);
  }
}

/** DELETE /v1/volumes/{id}: body `{is_permanent}` or `?force=true`; 204 when already deleted. */
export function deleteVolumeById(sim: Sim, id: string, body: unknown, query: URLSearchParams): ApiResponse {
  const v = getVolume(sim, id);
  const b = bodyObject(body);
  const permanent = b.is_permanent === true || query.get("force") === "true";
  if (v.is_permanently_deleted || (isDeleted(v) && !permanent)) return empty(204);
  if (!isShared(v) && v.instance_ids.length > 0) {
    const inst = sim.instances.get(v.instance_ids[0]!);
    if (inst && !inst.deleted && inst.status !== "offline") throw fail.forbidden("One or more of the specified instances is not shut down");
  }
  deleteVolumeNow(sim, v, permanent);
  return empty(202);
}
