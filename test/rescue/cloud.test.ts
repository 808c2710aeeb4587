// The Verda decisions of a rescue, against an in-memory Verda (statuses the simulator does not
// produce on demand: error, trash, no capacity, an unknown OS volume).
import { describe, expect, it } from "vitest";
import { checkScratchFree, chooseInstanceType, confirmGone, deleteRescueInstance, type RescueVerda } from "../../infra/rescue/cloud";
import type { Instance, InstanceActionBody, InstanceTypeInfo, Volume } from "../../infra/verda/types";

const waits = { pollMs: 1, timeoutMs: 50 };

function fakeVerda(o: { instances?: Partial<Instance>[]; volumes?: Partial<Volume>[]; types?: { instance_type: string; price_per_hour: string }[]; available?: string[] }) {
  const actions: InstanceActionBody[] = [];
  const instances = new Map((o.instances ?? []).map((i) => [i.id!, i as Instance]));
  const api: RescueVerda = {
    getInstance: async (id) => instances.get(id),
    getVolume: async (id) => (o.volumes ?? []).find((v) => v.id === id) as Volume | undefined,
    listInstanceTypes: async () => (o.types ?? []) as unknown as InstanceTypeInfo[],
    listImages: async () => [],
    deployInstance: async () => "new",
    instanceAction: async (body) => {
      actions.push(body);
      instances.delete(String(body.id));
      return [];
    },
    isAvailable: async (t) => (o.available ?? []).includes(t),
  };
  return { api, actions };
}

describe("rescue: Verda decisions", () => {
  it("an instance in error still holds the scratch: tells to delete it with its OS volume only", async () => {
    const { api } = fakeVerda({ instances: [{ id: "i1", status: "error" }] });
    await expect(confirmGone(api, "i1", "workshop-day", waits)).rejects.toThrow(/status "error".*ONLY its OS volume.*npm run rescue -- --stack workshop-day/);
  });

  it("a trashed scratch is refused with the way back; a missing one names R2 as what remains", async () => {
    const { api } = fakeVerda({ volumes: [{ id: "s1", status: "deleted", deleted_at: "2026-12-03T01:00:00Z" }] });
    await expect(checkScratchFree(api, "s1", waits)).rejects.toThrow(/in Verda's trash.*restore it in the Verda console/);
    await expect(checkScratchFree(api, "s2", waits)).rejects.toThrow(/does not exist at Verda \(404\).*R2/);
  });

  it("picks the cheapest CPU type with capacity, never a GPU; none available is refused before anything is created", async () => {
    const types = [
      { instance_type: "1H100.80S.22V", price_per_hour: "0.01" },
      { instance_type: "CPU.4V.16G", price_per_hour: "0.0279" },
      { instance_type: "CPU.8V.32G", price_per_hour: "0.0558" },
    ];
    expect(await chooseInstanceType(fakeVerda({ types, available: ["1H100.80S.22V", "CPU.4V.16G", "CPU.8V.32G"] }).api, "FIN-01")).toEqual({ instanceType: "CPU.4V.16G", pricePerHour: 0.0279 });
    expect((await chooseInstanceType(fakeVerda({ types, available: ["CPU.8V.32G"] }).api, "FIN-01")).instanceType).toBe("CPU.8V.32G");
    await expect(chooseInstanceType(fakeVerda({ types, available: [] }).api, "FIN-03")).rejects.toThrow(/no CPU instance type has capacity in FIN-03.*--instance-type/);
  });

  it("deletes the rescue instance with its OS volume only; with no known OS volume it deletes no volume at all", async () => {
    const withOs = fakeVerda({ instances: [{ id: "r1", status: "running", os_volume_id: "os1" }], volumes: [{ id: "s1", status: "detached" }] });
    expect(await deleteRescueInstance(withOs.api, "r1", "s1", waits)).toEqual({ osVolumeDeleted: true });
    expect(withOs.actions).toEqual([{ action: "delete", id: "r1", volume_ids: ["os1"], delete_permanently: true }]);
    const noOs = fakeVerda({ instances: [{ id: "r2", status: "provisioning" }], volumes: [{ id: "s1", status: "detached" }] });
    expect(await deleteRescueInstance(noOs.api, "r2", "s1", waits)).toEqual({ osVolumeDeleted: false });
    expect(noOs.actions[0]!.volume_ids).toEqual([]);
  });
});
