import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, FAST_TIMING, startTestSim } from "./helpers";

describe("simulator: volumes and SFS", () => {
  let sim: RunningSimulator;
  let c: Caller;
  // 300 ms, not 20 ms, in "ordered": a loaded CI machine once took longer than 20 ms between create and the
  // first GET, and the test saw "detached" already.
  beforeAll(async () => ({ sim, c } = await startTestSim({ timing: { ...FAST_TIMING, volumeCreateMs: 300 } })));
  beforeEach(() => sim.reset());
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("creates a block volume: 202 bare id, ordered -> detached, priced per GB-month / 730", async () => {
    const id = await c.createVolume({ size: 100, name: "scratch" });
    expect((await c.volume(id)).status).toBe("ordered");
    const v = await c.waitVolume(id, "detached");
    expect(v).toMatchObject({ name: "scratch", size: 100, type: "NVMe", location: "FIN-01", is_os_volume: false, instance_id: null, target: null, monthly_price: 20, contract: "PAY_AS_YOU_GO", long_term: null });
    expect(v.base_hourly_cost).toBeCloseTo(20 / 730, 10);
    expect(v.pseudo_path).toMatch(/^volume-[0-9a-f]{8}$/);
    expect((await c.call("GET", "/volumes")).json.map((x: { id: string }) => x.id)).toEqual([id]);
    expect((await c.call("GET", "/volumes?status=attached")).json).toEqual([]);
  });

  it("rejects bad input: HDD, size <= 0, unknown type, missing location", async () => {
    const cases: Array<[Record<string, unknown>, number, RegExp]> = [
      [{ type: "HDD" }, 400, /no longer be created/],
      [{ size: 0 }, 400, /greater than 0/],
      [{ size: -5 }, 400, /greater than 0/],
      [{ type: "Floppy" }, 400, /Invalid volume type/],
      [{ location_code: undefined }, 400, /location_code is required/],
      [{ name: "" }, 400, /name is required/],
    ];
    for (const [patch, status, message] of cases) {
      const r = await c.call("POST", "/volumes", { type: "NVMe", location_code: "FIN-01", size: 10, name: "v", ...patch });
      expect(r.status, JSON.stringify(patch)).toBe(status);
      expect(r.json.message).toMatch(message);
    }
  });

  it("block attach needs the instance shut down (403) and the same location (400)", async () => {
    const i = await c.runningInstance();
    const vol = await c.createVolume();
    await c.waitVolume(vol, "detached");
    const busy = await c.call("PUT", "/volumes", { action: "attach", id: vol, instance_id: i.id });
    expect(busy.status).toBe(403);
    expect(busy.json).toEqual({ code: "forbidden_action", message: "One or more of the specified instances is not shut down" });
    const away = await c.createVolume({ location_code: "FIN-03" });
    await c.waitVolume(away, "detached");
    await c.call("PUT", "/instances", { action: "shutdown", id: i.id });
    await c.waitInstance(i.id, "offline");
    const wrong = await c.call("PUT", "/volumes", { action: "attach", id: away, instance_id: i.id });
    expect(wrong.status).toBe(400);
    expect(wrong.json.message).toBe("Volume location (FIN-03) does not match instance location (FIN-01)");
    expect((await c.call("PUT", "/volumes", { action: "attach", id: vol, instance_id: i.id })).status).toBe(202);
    expect((await c.volume(vol)).status).toBe("attaching");
    const attached = await c.waitVolume(vol, "attached");
    expect(attached).toMatchObject({ instance_id: i.id, target: "vdb" });
    expect(attached.instances[0]).toMatchObject({ id: i.id, hostname: "sim-test" });
    expect((await c.instance(i.id)).volume_ids).toContain(vol);
    expect((await c.call("PUT", "/volumes", { action: "detach", id: vol })).status).toBe(202);
    expect((await c.volume(vol)).status).toBe("detaching");
    expect(await c.waitVolume(vol, "detached")).toMatchObject({ instance_id: null, target: null, instances: [] });
  });

  it("creates with instance_id only for shut-down instances", async () => {
    const i = await c.runningInstance();
    const r = await c.call("POST", "/volumes", { type: "NVMe", location_code: "FIN-01", size: 10, name: "v", instance_id: i.id });
    expect(r.status).toBe(403);
  });

  it("rename and grow-only resize; resize reprices the meter", async () => {
    const id = await c.createVolume({ size: 10 });
    await c.waitVolume(id, "detached");
    expect((await c.call("PUT", "/volumes", { action: "rename", id, name: "renamed" })).status).toBe(202);
    const shrink = await c.call("PUT", "/volumes", { action: "resize", id, size: 5 });
    expect(shrink.status).toBe(400);
    expect(shrink.json.message).toBe("Can't be lower than current size");
    expect((await c.call("PUT", "/volumes", { action: "resize", id, size: 40 })).status).toBe(202);
    expect(await c.volume(id)).toMatchObject({ name: "renamed", size: 40, monthly_price: 8 });
    expect(sim.state().meters.find((m) => m.resource_id === id)?.price_per_hour).toBeCloseTo(8 / 730, 10);
  });

  it("delete to trash, restore, permanent delete; DELETE /volumes/{id} is idempotent (204)", async () => {
    const id = await c.createVolume();
    await c.waitVolume(id, "detached");
    expect((await c.call("PUT", "/volumes", { action: "delete", id })).status).toBe(202);
    const trashed = await c.volume(id);
    expect(trashed).toMatchObject({ status: "deleted", is_permanently_deleted: false });
    expect(trashed.deleted_at).toMatch(/Z$/);
    expect(trashed.mount_command).toBeUndefined();
    expect((await c.call("GET", "/volumes")).json).toEqual([]);
    expect((await c.call("GET", "/volumes/trash")).json).toHaveLength(1);
    expect((await c.call("PUT", "/volumes", { action: "restore", id })).status).toBe(202);
    expect((await c.volume(id)).status).toBe("detached");
    expect((await c.call("DELETE", `/volumes/${id}`, { is_permanent: false })).status).toBe(202);
    expect((await c.call("DELETE", `/volumes/${id}`, { is_permanent: false })).status).toBe(204);
    expect((await c.call("DELETE", `/volumes/${id}?force=true`)).status).toBe(202);
    expect(await c.volume(id)).toMatchObject({ status: "deleted", is_permanently_deleted: true });
    expect((await c.call("DELETE", `/volumes/${id}`, { is_permanent: true })).status).toBe(204);
    expect((await c.call("GET", "/volumes/trash")).json).toEqual([]);
    expect((await c.call("DELETE", "/volumes/2b1af58a-7537-4edb-ba81-82cee082c5e9", {})).status).toBe(404);
  });

  it("trash is emptied after the retention period (simulated time)", async () => {
    const id = await c.createVolume();
    await c.call("PUT", "/volumes", { action: "delete", id });
    sim.advanceClock(97 * 3_600_000);
    expect((await c.call("GET", "/volumes/trash")).json).toEqual([]);
    expect((await c.volume(id)).is_permanently_deleted).toBe(true);
  });

  it("SFS: created, attaches to several running instances (exported), carries mount data", async () => {
    const a = await c.runningInstance({ hostname: "a" });
    const b = await c.runningInstance({ hostname: "b" });
    const id = await c.createVolume({ type: "NVMe_Shared", name: "models", size: 500 });
    const created = await c.waitVolume(id, "created");
    expect(created.pseudo_path).toMatch(/^volume-[0-9a-f]{8}$/);
    expect(created.target).toBe(`nfs.fin-01.datacrunch.io:/${created.pseudo_path}`);
    expect(created.mount_command).toBe(`mount -t nfs -o nconnect=16 nfs.fin-01.datacrunch.io:${created.pseudo_path} /mnt/volume`);
    const r = await c.call("PUT", "/volumes", { action: "attach", id, instance_ids: [a.id, b.id] });
    expect(r.status).toBe(202);
    expect(r.json).toEqual([null]);
    const exported = await c.waitVolume(id, "exported");
    expect(exported.instances.map((i: { id: string }) => i.id)).toEqual([a.id, b.id]);
    expect((await c.call("PUT", "/volumes", { action: "detach", id, instance_id: a.id })).status).toBe(202);
    await new Promise((r2) => setTimeout(r2, 60));
    expect((await c.volume(id)).instances.map((i: { id: string }) => i.id)).toEqual([b.id]);
    expect((await c.call("PUT", "/volumes", { action: "detach", id })).status).toBe(202);
    await c.waitVolume(id, "detached");
  });

  it("SFS can be attached at deploy time and at creation to a running instance", async () => {
    const i = await c.runningInstance();
    const id = await c.createVolume({ type: "NVMe_Shared", name: "sfs", size: 50, instance_ids: [i.id] });
    expect((await c.waitVolume(id, "exported")).instance_id).toBe(i.id);
  });

  it("clones a detached volume", async () => {
    const id = await c.createVolume({ size: 30, name: "src" });
    await c.waitVolume(id, "detached");
    const r = await c.call("PUT", "/volumes", { action: "clone", id, name: "copy" });
    expect(r.status).toBe(202);
    const copy = await c.waitVolume(r.json.id, "detached");
    expect(copy).toMatchObject({ name: "copy", size: 30, type: "NVMe" });
  });

  it("tags volumes (201), refuses duplicates (409), removes them (204)", async () => {
    const id = await c.createVolume();
    const t = await c.call("POST", `/volumes/${id}/tags`, { key: "role", value: "scratch" });
    expect(t.status).toBe(201);
    expect((await c.call("POST", `/volumes/${id}/tags`, { key: "role", value: "scratch" })).status).toBe(409);
    expect((await c.call("DELETE", `/volumes/${id}/tags/${t.json.id}`)).status).toBe(204);
    expect((await c.call("DELETE", `/volumes/${id}/tags/${t.json.id}`)).status).toBe(404);
  });
});
