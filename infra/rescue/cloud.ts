// The Verda side of a rescue: prove the worker is gone and its scratch is free, start the
// cheapest CPU instance with the scratch attached at creation (the only time Verda attaches a
// block volume to a running instance's future), and delete that instance again WITHOUT the scratch.
import type { VerdaClient } from "../verda/client";
import type { Instance, InstanceTypeInfo, Volume } from "../verda/types";
import { INSTANCE_FAILED_STATUSES, instanceEnded } from "../verda/statuses";

/** Statuses after which an instance holds no volume and bills nothing. */

/** The subset of VerdaClient a rescue uses (a fake would do in unit tests; the simulator in ours). */
export type RescueVerda = Pick<
  VerdaClient,
  "getInstance" | "getVolume" | "listInstanceTypes" | "listImages" | "deployInstance" | "instanceAction"
> & { isAvailable(instanceType: string, location: string): Promise<boolean> };

export interface Waits {
  pollMs: number;
  /** For the gone instance to let go of the scratch, and for the rescue instance to run or go. */
  timeoutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, waits: Waits, observe: () => Promise<T>, done: (v: T) => boolean, show: (v: T) => string): Promise<T> {
  const deadline = Date.now() + waits.timeoutMs;
  for (;;) {
    const v = await observe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(waits.timeoutMs / 1000)} s waiting for ${what} (last seen: ${show(v)})`);
    await sleep(waits.pollMs);
  }
}

/**
 * Refuses unless Verda no longer has the instance (404, discontinued) or is deleting it; then
 * waits until it is gone. A live instance (running, offline, provisioning) is the normal
 * destroy's job: its backup hook can reach it.
 */
export async function confirmGone(api: RescueVerda, instanceId: string, stack: string, waits: Waits): Promise<string> {
  const current = await api.getInstance(instanceId);
  if (current && !instanceEnded(current.status) && current.status !== "deleting") {
    const status = String(current.status);
    if (INSTANCE_FAILED_STATUSES.includes(status)) {
      throw new Error(
        `instance ${instanceId} is in status "${status}" at Verda and still holds the scratch: delete it in the Verda console ticking ONLY its OS volume (never the scratch), then run \`npm run rescue -- --stack ${stack}\` again`,
      );
    }
    const hint = status === "offline" ? "start it in the Verda console, then " : "";
    throw new Error(`instance ${instanceId} is still ${status} at Verda: nothing to rescue; ${hint}run the normal destroy, which backs it up first: scripts/pulumi destroy --stack ${stack}`);
  }
  const last = await poll(`instance ${instanceId} to be gone`, waits, () => api.getInstance(instanceId), (i) => !i || instanceEnded(i.status), (i) => (i ? String(i.status) : "gone"));
  return last ? String(last.status) : "not found (404)";
}

/**
 * The scratch must exist, be out of the trash, and be detached. It waits while the gone instance
 * (or another instance being deleted) lets go; attached to a live instance it is refused at once.
 */
export async function checkScratchFree(api: RescueVerda, volumeId: string, waits: Waits): Promise<Volume> {
  const first = await api.getVolume(volumeId);
  if (!first) throw new Error(`scratch volume ${volumeId} does not exist at Verda (404): there is nothing left to rescue; its last backup in R2 is what remains`);
  const trashed = (v: Volume) => !!v.deleted_at || v.status === "deleted" || v.is_permanently_deleted === true;
  if (trashed(first)) {
    throw new Error(`scratch volume ${volumeId} is in Verda's trash (deleted at ${first.deleted_at ?? "?"}): restore it in the Verda console (Storage > Trash) within 96 h, then run the rescue again`);
  }
  const holderId = first.instance_id;
  const holder = holderId ? await api.getInstance(holderId) : undefined;
  if (holder && !instanceEnded(holder.status) && holder.status !== "deleting") {
    throw new Error(`scratch volume ${volumeId} is attached to instance ${holder.id} (${holder.hostname}, ${holder.status}): back it up from there or delete that instance (OS volume only) first`);
  }
  return poll(
    `scratch ${volumeId} to be detached`,
    waits,
    async () => (await api.getVolume(volumeId)) ?? first,
    (v) => v.status === "detached" && !v.instance_id,
    (v) => `${v.status}${v.instance_id ? ` on instance ${v.instance_id}` : ""}`,
  ).catch((e: Error) => {
    throw new Error(`${e.message}: the scratch is still attached; if that instance is alive, use the normal destroy, otherwise detach it in the Verda console and retry`);
  });
}

function hourly(t: InstanceTypeInfo): number {
  return Number((t as { price_per_hour?: unknown }).price_per_hour);
}

function isCpu(t: InstanceTypeInfo): boolean {
  const gpus = (t as { gpu?: { number_of_gpus?: number } }).gpu?.number_of_gpus;
  return t.instance_type.startsWith("CPU.") && !gpus;
}

/** The cheapest CPU type available in `location` (or the operator's choice, checked the same way). */
export async function chooseInstanceType(api: RescueVerda, location: string, wanted?: string): Promise<{ instanceType: string; pricePerHour: number }> {
  const types = await api.listInstanceTypes();
  if (wanted) {
    const t = types.find((x) => x.instance_type === wanted);
    if (!t) throw new Error(`--instance-type ${wanted} is not a Verda instance type; CPU types: ${types.filter(isCpu).map((x) => x.instance_type).join(", ")}`);
    if (!(await api.isAvailable(wanted, location))) throw new Error(`--instance-type ${wanted} has no capacity in ${location} now; pick another CPU type or retry later`);
    return { instanceType: wanted, pricePerHour: hourly(t) };
  }
  const cpus = types.filter((t) => isCpu(t) && Number.isFinite(hourly(t))).sort((a, b) => hourly(a) - hourly(b));
  for (const t of cpus) if (await api.isAvailable(t.instance_type, location)) return { instanceType: t.instance_type, pricePerHour: hourly(t) };
  throw new Error(`no CPU instance type has capacity in ${location} (the scratch's location) now: retry later, or name a type with --instance-type`);
}

/** A plain Ubuntu image the type supports (no CUDA needed to read a disk). */
export async function chooseImage(api: RescueVerda, instanceType: string): Promise<string> {
  const images = (await api.listImages(instanceType)).map((i) => i.image_type);
  const pick = ["ubuntu-24.04", "ubuntu-22.04"].find((x) => images.includes(x)) ?? images.find((x) => x.startsWith("ubuntu"));
  if (!pick) throw new Error(`Verda offers no Ubuntu image for ${instanceType} (images: ${images.join(", ") || "none"})`);
  return pick;
}

export interface RescueInstanceSpec {
  instanceType: string;
  image: string;
  hostname: string;
  location: string;
  sshKeyIds: string[];
  scratchVolumeId: string;
  description: string;
}

/** Deploys with the scratch attached at creation and waits for `running`; returns the instance. */
export async function deployRescueInstance(api: RescueVerda, spec: RescueInstanceSpec, waits: Waits, onId: (id: string) => void): Promise<Instance> {
  const id = await api.deployInstance({
    instance_type: spec.instanceType,
    image: spec.image,
    hostname: spec.hostname,
    location_code: spec.location,
    description: spec.description,
    ssh_key_ids: spec.sshKeyIds,
    os_volume: { name: `${spec.hostname}-os`, size: 50 },
    existing_volumes: [spec.scratchVolumeId],
    is_spot: false,
    contract: "PAY_AS_YOU_GO",
  });
  onId(id);
  const up = await poll(`rescue instance ${id} to run`, waits, () => api.getInstance(id), (i) => !!i && (i.status === "running" || INSTANCE_FAILED_STATUSES.includes(String(i.status))), (i) => (i ? String(i.status) : "not visible yet"));
  if (!up || up.status !== "running") throw new Error(`rescue instance ${id} ended ${up ? up.status : "missing"} instead of running (${spec.instanceType} in ${spec.location})`);
  if (!up.ip) throw new Error(`rescue instance ${id} runs without an IP address`);
  return up;
}

/**
 * Deletes the rescue instance with its OS volume only: `volume_ids` lists nothing but the OS
 * volume, so Verda detaches the scratch (verda-api.md §6.1: attached volumes not listed are
 * detached). Waits until it is gone, then proves the scratch still exists.
 */
export async function deleteRescueInstance(api: RescueVerda, id: string, scratchVolumeId: string, waits: Waits): Promise<{ osVolumeDeleted: boolean }> {
  const current = await api.getInstance(id);
  if (current && !instanceEnded(current.status)) {
    const os = current.os_volume_id || undefined;
    // Only the OS volume, never the scratch; without a known OS volume nothing is deleted (it is then reported).
    const volumeIds = os && os !== scratchVolumeId ? [os] : [];
    if (current.status !== "deleting") {
      const results = await api.instanceAction({ action: "delete", id, volume_ids: volumeIds, delete_permanently: true });
      const failed = results.find((r) => r.status === "error" && r.statusCode !== 404);
      if (failed) throw new Error(`Verda refused to delete rescue instance ${id}: ${failed.error ?? "unknown error"}`);
    }
    await poll(`rescue instance ${id} to be deleted`, waits, () => api.getInstance(id), (i) => !i || instanceEnded(i.status), (i) => (i ? String(i.status) : "gone"));
    const scratch = await api.getVolume(scratchVolumeId);
    if (!scratch || scratch.deleted_at || scratch.status === "deleted") throw new Error(`scratch ${scratchVolumeId} is no longer listed after deleting rescue instance ${id}: check Verda's trash at once`);
    return { osVolumeDeleted: volumeIds.length > 0 };
  }
  return { osVolumeDeleted: false };
}
