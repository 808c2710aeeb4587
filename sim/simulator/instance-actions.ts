// Instance actions (PUT /v1/instances): start, shutdown, hibernate, delete with volume handling.
import { ApiError, bodyObject, empty, fail, ok, type ApiResponse } from "./http";
import { attachedVolumes, becomeRunning, getInstance, releasePending, stillOurs, stringList } from "./instances";
import type { Sim } from "./state";
import type { InstanceAction, InstanceRecord, Schemas, VolumeRecord } from "./types";
import { deleteVolumeNow, detachNow } from "./volumes";

type ActionOutcome = "done" | "noop";
type ActionResult = Schemas["InstanceActionResultDto"];

/** Applies one action to one instance; throws ApiError (400/404) when not allowed. */
function applyAction(sim: Sim, id: string, action: InstanceAction, b: Record<string, unknown>): ActionOutcome {
  const inst = getInstance(sim, id);
  const t = sim.opts.timing;
  switch (action) {
    case "start":
    case "boot":
      if (inst.status === "running") return "noop";
      if (inst.status !== "offline") throw fail.badRequest(`Can't start an instance that is ${inst.status}`);
      sim.schedule(t.instanceActionMs, () => {
        if (stillOurs(inst, "offline")) becomeRunning(sim, inst);
      });
      return "done";
    case "shutdown":
    case "force_shutdown":
      if (inst.status === "offline") return "noop";
      if (inst.status !== "running") throw fail.badRequest(`Can't shut down an instance that is ${inst.status}`);
      sim.schedule(t.instanceActionMs, () => {
        if (stillOurs(inst, "running")) inst.status = "offline"; // keeps billing, as live
      });
      return "done";
    case "hibernate":
      if (inst.status !== "offline") throw fail.badRequest("The instance must be shut down before hibernating");
      removeInstance(sim, inst, [], false);
      return "done";
    case "delete":
    case "discontinue":
    case "delete_stuck": {
      if (inst.status === "deleting") return "noop";
      const volumeIds = b.volume_ids === undefined || b.volume_ids === null ? null : stringList(b.volume_ids, "volume_ids");
      removeInstance(sim, inst, volumeIds, b.delete_permanently === true);
      return "done";
    }
    default:
      throw fail.badRequest(`Action ${action} is not supported by the simulator`);
  }
}

/** Deletes an instance: listed volumes are deleted, the rest detached (verda-api.md §6.1, §10.4). */
function removeInstance(sim: Sim, inst: InstanceRecord, volumeIds: string[] | null, permanently: boolean): void {
  const attached = attachedVolumes(sim, inst.id);
  const toDelete =
    volumeIds ?? (sim.opts.osVolumeOnImplicitDelete === "delete" && inst.os_volume_id ? [inst.os_volume_id] : []);
  for (const vid of toDelete) {
    if (!attached.some((v) => v.id === vid)) throw fail.badRequest(`Volume ${vid} is not attached to instance ${inst.id}`);
  }
  inst.status = "deleting";
  sim.billing.stop(inst.id);
  releasePending(sim, inst);
  for (const v of attached) {
    if (toDelete.includes(v.id)) deleteVolumeNow(sim, v, permanently);
    else {
      detachNow(v, inst.id);
      holdIfStuck(sim, v);
    }
  }
  sim.schedule(sim.opts.timing.instanceDeleteMs, () => {
    inst.deleted = true;
  });
}

/** Fault `volume_stuck_detaching`: a block volume stays `detaching` until its rule is cleared. */
function holdIfStuck(sim: Sim, v: VolumeRecord): void {
  if (v.type === "NVMe_Shared" || v.is_os_volume || v.status !== "detached") return;
  const ruleId = sim.faults.stuckDetaching(v.id, v.name);
  if (!ruleId) return;
  v.status = "detaching";
  const check = () => {
    if (v.status !== "detaching") return;
    if (sim.faults.has(ruleId)) sim.schedule(100, check);
    else v.status = "detached";
  };
  sim.schedule(100, check);
}

const ACTIONS: InstanceAction[] = [
  "boot", "start", "shutdown", "delete", "discontinue", "hibernate", "configure_spot", "force_shutdown", "delete_stuck", "deploy", "transfer",
];

/** PUT /v1/instances: 202 all done, 207 mixed, 204 single no-op, 400/404 single failure. */
export function instanceAction(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  const action = b.action as InstanceAction;
  if (!ACTIONS.includes(action)) throw fail.badRequest(`Invalid action: ${String(b.action)}`);
  const single = !Array.isArray(b.id);
  const ids = stringList(b.id, "id");
  if (ids.length === 0) throw fail.badRequest("id is required");
  const partial = sim.faults.takePartialAction(action);
  if (partial) {
    // Fault `action_partial`: 207 with every instance failed; nothing changes.
    const statusCode = partial.status_code ?? 500;
    const error = partial.message ?? `Injected partial failure of ${action}`;
    return ok(ids.map((id): ActionResult => ({ instanceId: id, action, status: "error", error, statusCode })), 207);
  }
  if (single) {
    const outcome = applyAction(sim, ids[0]!, action, b);
    const result: ActionResult = { instanceId: ids[0]!, action, status: "success" };
    return outcome === "noop" ? empty(204) : ok([result], 202);
  }
  const results = ids.map((id): ActionResult => {
    try {
      applyAction(sim, id, action, b);
      return { instanceId: id, action, status: "success" };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return { instanceId: id, action, status: "error", error: err.message, statusCode: err.status };
    }
  });
  return ok(results, results.some((r) => r.status === "error") ? 207 : 202);
}
