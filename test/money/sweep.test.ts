// The sweep against the simulator: an instance deleted out of band without volume_ids leaves its
// OS volume detached and billing; the sweep finds it (with its monthly cost), never lists or
// deletes what a stack owns, and deletes only when asked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findLeftovers, idsInStackExport, loadPriceBook, ownedIdsFromStacks, removeLeftovers } from "../../infra/money";
import { createVolume, deployRunning, simRig, waitFor, type SimRig } from "./helpers";

describe("sweep", () => {
  let rig: SimRig;
  beforeAll(async () => {
    rig = await simRig();
  });
  afterAll(() => rig.close());

  it("finds the orphan OS volume of an out-of-band delete, and removes only leftovers", async () => {
    const { client, api } = rig;
    // Owned by stacks: an SFS and a running day instance (its OS volume too).
    const sfs = await createVolume(client, { name: "comfyume-workshop-sfs", type: "NVMe_Shared", sizeGb: 220 });
    const owned = await deployRunning(client, { hostname: "comfyume-workshop-day" });
    const ownedIds = new Set([sfs.id, owned.id, owned.os_volume_id!]);

    // Out of band: someone deletes an instance in the console/API without volume_ids.
    const stray = await deployRunning(client, { hostname: "forgotten-test", osVolumeGb: 60 });
    // The typed client insists on delete_permanently; send what a console/SDK user would: no volume_ids.
    await client.instanceAction({ action: "delete", id: stray.id, delete_permanently: true } as never);
    await waitFor("stray gone", async () => ((await client.getInstance(stray.id)) ? undefined : true));
    const orphanOs = await client.getVolume(stray.os_volume_id!);
    expect(orphanOs).toMatchObject({ status: "detached", is_os_volume: true });
    // A leftover in trash and a stray instance still running.
    const trashed = await createVolume(client, { name: "old-scratch", sizeGb: 50 });
    await client.deleteVolume(trashed.id, false);
    const running = await deployRunning(client, { hostname: "stray-cpu", instanceType: "CPU.4V.16G", osVolumeGb: 50 });

    const book = await loadPriceBook(api, "usd");
    const leftovers = findLeftovers({ instances: await api.instances(), volumes: await api.volumes(), trash: await api.trash(), owned: ownedIds, book });
    const byId = Object.fromEntries(leftovers.map((l) => [l.id, l]));
    expect(Object.keys(byId).sort()).toEqual([orphanOs!.id, trashed.id, running.id].sort());
    expect(byId[orphanOs!.id]).toMatchObject({ kind: "detached OS volume", perMonth: expect.closeTo(12, 6) }); // 60 GB × $0.20
    expect(byId[trashed.id]).toMatchObject({ kind: "volume in trash", perMonth: expect.closeTo(10, 6) });
    expect(byId[running.id]).toMatchObject({ kind: "stray instance", osVolumeId: running.os_volume_id });
    expect(byId[running.id]!.perMonth).toBeCloseTo(0.0279 * 730, 6);
    // The stray's own OS volume is listed with it, not twice.
    expect(byId[running.os_volume_id!]).toBeUndefined();

    // An owned id slipped into the list is refused.
    const forged = { ...byId[orphanOs!.id]!, id: sfs.id };
    const actions = await removeLeftovers(client, [...leftovers, forged], { owned: ownedIds, permanent: false });
    expect(actions.map((a) => [a.leftover.kind, a.action])).toEqual(
      expect.arrayContaining([
        ["stray instance", "moved to trash"],
        ["detached OS volume", "moved to trash"],
        ["volume in trash", "skipped"],
        ["detached OS volume", "skipped"],
      ]),
    );
    expect((await client.getVolume(sfs.id))?.status).not.toBe("deleted");
    expect((await client.getInstance(owned.id))?.status).toBe("running");
    expect((await client.getVolume(orphanOs!.id))?.status).toBe("deleted");

    // --permanent empties what is left, trash included; nothing billing remains but the owned ones.
    await waitFor("stray cpu gone", async () => ((await client.getInstance(running.id)) ? undefined : true));
    const again = findLeftovers({ instances: await api.instances(), volumes: await api.volumes(), trash: await api.trash(), owned: ownedIds, book });
    await removeLeftovers(client, again, { owned: ownedIds, permanent: true });
    expect(findLeftovers({ instances: await api.instances(), volumes: await api.volumes(), trash: await api.trash(), owned: ownedIds, book })).toEqual([]);
    const billing = rig.sim.state().meters.filter((m) => m.running).map((m) => m.resource_id).sort();
    expect(billing).toEqual([...ownedIds].sort());
  });

  it("reads owned ids from a stack export", () => {
    const exported = {
      version: 3,
      deployment: {
        resources: [
          { urn: "urn:pulumi:workshop-month::comfyume::pulumi:pulumi:Stack::comfyume-workshop-month" },
          { urn: "urn:...:verda:Volume::sfs", id: "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9", outputs: { volumeId: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9" } },
          { urn: "urn:...:verda:Instance::gpu", id: "11111111-2222-4333-8444-555555555555", outputs: { osVolumeId: "66666666-7777-4888-9999-000000000000", name: "not-an-id" } },
        ],
      },
    };
    expect([...idsInStackExport(exported)].sort()).toEqual(["0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"]);
  });

  it("collects owned ids from every phase stack that exists, and names the unreadable ones", () => {
    const calls: string[] = [];
    const run = (args: string[]) => {
      calls.push(args.join(" "));
      if (args[1] === "ls") return { status: 0, stdout: JSON.stringify([{ name: "organization/comfyume/idle" }, { name: "workshop-month" }, { name: "workshop-day" }]), stderr: "" };
      if (args.includes("workshop-day")) return { status: 255, stdout: "", stderr: "error: could not decrypt" };
      return { status: 0, stdout: JSON.stringify({ deployment: { resources: [{ id: args.includes("idle") ? "aaaaaaaa-0000-4000-8000-000000000001" : "bbbbbbbb-0000-4000-8000-000000000002" }] } }), stderr: "" };
    };
    const owned = ownedIdsFromStacks(undefined, run);
    expect(owned.stacks).toEqual(["idle", "workshop-month"]);
    expect(owned.unreadable).toEqual(["workshop-day"]);
    expect([...owned.ids].sort()).toEqual(["aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"]);
    expect(calls).not.toContain("stack export --stack testing-day");
  });
});
