import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { InstanceView, RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, FAST_TIMING, PUBLIC_KEY, startTestSim } from "./helpers";

describe("simulator: instances", () => {
  let sim: RunningSimulator;
  let c: Caller;
  const running: InstanceView[] = [];
  // Long enough "ordered" and "deleting" windows that a loaded machine still observes them.
  beforeAll(async () => ({ sim, c } = await startTestSim({ timing: { ...FAST_TIMING, orderedMs: 400, instanceDeleteMs: 400 }, onInstanceRunning: (i) => void running.push(i) })));
  beforeEach(() => {
    sim.reset();
    running.length = 0;
  });
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("deploys with a bare UUID (202) and goes ordered -> provisioning -> running", async () => {
    const key = await c.call("POST", "/ssh-keys", { name: "k", key: PUBLIC_KEY });
    const r = await c.call("POST", "/instances", {
      instance_type: "1H100.80S.32V",
      image: "ubuntu-24.04-cuda-12.8-open-docker",
      hostname: "gpu-1",
      location_code: "FIN-03",
      ssh_key_ids: [key.text],
      os_volume: { name: "gpu-1-os", size: 60 },
    });
    expect(r.status).toBe(202);
    expect(r.text).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers.get("content-type")).toMatch(/text\/plain/);
    const first = await c.instance(r.text);
    expect(first).toMatchObject({ status: "ordered", ip: null, os_volume_id: null, location: "FIN-03", price_per_hour: 3.56 });
    const prov = await c.waitInstance(r.text, "provisioning");
    expect(prov.os_volume_id).toMatch(/^[0-9a-f-]{36}$/);
    const up = await c.waitInstance(r.text, "running");
    expect(up.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(up.volume_ids).toEqual([up.os_volume_id]);
    const os = await c.volume(up.os_volume_id);
    expect(os).toMatchObject({ is_os_volume: true, target: "vda", status: "attached", size: 60, name: "gpu-1-os", instance_id: up.id, ssh_key_ids: [key.text] });
    expect(running.map((i) => i.id)).toEqual([up.id]);
    expect((await c.call("GET", "/instances")).json.map((i: InstanceView) => i.id)).toEqual([up.id]);
  });

  it("validates deploy input with 400 invalid_request", async () => {
    const base = { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "ok-host", location_code: "FIN-01" };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ location_code: undefined }, /location_code is required/],
      [{ instance_type: "9Z999.1V" }, /Invalid instance type/],
      [{ location_code: "MARS-01" }, /Invalid location_code/],
      [{ hostname: "-bad-" }, /hostname/],
      [{ hostname: "1234" }, /letter/],
      [{ hostname: "has_underscore" }, /hostname/],
      [{ image: "windows-95" }, /Invalid image/],
      [{ image: "ubuntu-24.04-cuda-12.8-open-docker" }, /not supported on CPU/],
      [{ ssh_key_ids: ["2b1af58a-7537-4edb-ba81-82cee082c5e9"] }, /SSH key not found/],
      [{ os_volume: { name: "x", size: 0 } }, /greater than 0/],
    ];
    for (const [patch, message] of cases) {
      const r = await c.call("POST", "/instances", { ...base, ...patch });
      expect(r.status, JSON.stringify(patch)).toBe(400);
      expect(r.json.code).toBe("invalid_request");
      expect(r.json.message).toMatch(message);
    }
    expect(sim.state().instances).toEqual([]);
  });

  it("shutdown keeps the instance (offline), start brings it back; no-ops answer 204", async () => {
    const i = await c.runningInstance();
    expect((await c.call("PUT", "/instances", { action: "start", id: i.id })).status).toBe(204);
    const shut = await c.call("PUT", "/instances", { action: "shutdown", id: i.id });
    expect(shut.status).toBe(202);
    expect(shut.json).toEqual([{ instanceId: i.id, action: "shutdown", status: "success" }]);
    await c.waitInstance(i.id, "offline");
    expect((await c.call("PUT", "/instances", { action: "shutdown", id: i.id })).status).toBe(204);
    expect((await c.call("PUT", "/instances", { action: "start", id: i.id })).status).toBe(202);
    await c.waitInstance(i.id, "running");
    expect(running).toHaveLength(1); // the hook fires once per instance
  });

  it("refuses actions in the wrong state (400) and on unknown instances (404)", async () => {
    const id = await c.createInstance();
    const early = await c.call("PUT", "/instances", { action: "shutdown", id });
    expect(early.status).toBe(400);
    expect(early.json.code).toBe("invalid_request");
    const missing = await c.call("PUT", "/instances", { action: "delete", id: "2b1af58a-7537-4edb-ba81-82cee082c5e9" });
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe("not_found");
    expect((await c.call("GET", "/instances/2b1af58a-7537-4edb-ba81-82cee082c5e9")).status).toBe(404);
    expect((await c.call("GET", "/instances/not-a-uuid")).json).toEqual({ code: "invalid_request", message: "Invalid instance id" });
  });

  it("delete with volume_ids [os] + delete_permanently removes the OS volume and keeps the others", async () => {
    const sfsId = await c.createVolume({ type: "NVMe_Shared", name: "sfs", size: 100 });
    const scratchId = await c.createVolume({ name: "scratch", size: 50 });
    await c.waitVolume(scratchId, "detached");
    const i = await c.runningInstance({ existing_volumes: [scratchId, sfsId] });
    expect(new Set(i.volume_ids)).toEqual(new Set([i.os_volume_id, scratchId, sfsId]));
    const del = await c.call("PUT", "/instances", { action: "delete", id: i.id, volume_ids: [i.os_volume_id], delete_permanently: true });
    expect(del.status).toBe(202);
    // Gone once the delete window has passed (polled: a loaded machine may take longer than the window).
    const deadline = Date.now() + 10_000;
    let status = 0;
    while ((status = (await c.call("GET", `/instances/${i.id}`)).status) !== 404 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(status).toBe(404);
    const os = await c.volume(i.os_volume_id);
    expect(os).toMatchObject({ status: "deleted", is_permanently_deleted: true });
    expect(await c.volume(scratchId)).toMatchObject({ status: "detached", instance_id: null, target: null });
    expect(await c.volume(sfsId)).toMatchObject({ status: "detached", instance_id: null });
    const meters = sim.state().meters;
    expect(meters.find((m) => m.resource_id === i.id)?.running).toBe(false);
    expect(meters.find((m) => m.resource_id === i.os_volume_id)?.running).toBe(false);
    expect(meters.find((m) => m.resource_id === scratchId)?.running).toBe(true);
  });

  it("delete without volume_ids leaves the OS volume detached and billing (as observed live)", async () => {
    const i = await c.runningInstance();
    expect((await c.call("PUT", "/instances", { action: "delete", id: i.id })).status).toBe(202);
    const os = await c.volume(i.os_volume_id);
    expect(os).toMatchObject({ status: "detached", is_os_volume: true, instance_id: null });
    expect(sim.state().meters.find((m) => m.resource_id === i.os_volume_id)?.running).toBe(true);
    // ... and it can be booted again as `image`.
    const again = await c.runningInstance({ image: i.os_volume_id, hostname: "reborn" });
    expect(again.os_volume_id).toBe(i.os_volume_id);
    expect(again.image).toBe(i.os_volume_id);
  });

  it("delete to trash (delete_permanently false) and a repeated delete answers 204", async () => {
    const i = await c.runningInstance();
    await c.call("PUT", "/instances", { action: "delete", id: i.id, volume_ids: [i.os_volume_id], delete_permanently: false });
    expect((await c.call("PUT", "/instances", { action: "delete", id: i.id })).status).toBe(204);
    const trash = await c.call("GET", "/volumes/trash");
    expect(trash.json.map((v: { id: string }) => v.id)).toEqual([i.os_volume_id]);
    expect(trash.json[0].is_permanently_deleted).toBe(false);
  });

  it("multi-instance actions answer 207 with per-instance results when some fail", async () => {
    const a = await c.runningInstance({ hostname: "a" });
    const b = await c.runningInstance({ hostname: "b" });
    const ghost = "2b1af58a-7537-4edb-ba81-82cee082c5e9";
    const r = await c.call("PUT", "/instances", { action: "delete", id: [a.id, ghost, b.id], volume_ids: [] });
    expect(r.status).toBe(207);
    expect(r.json).toEqual([
      { instanceId: a.id, action: "delete", status: "success" },
      { instanceId: ghost, action: "delete", status: "error", error: "Instance not found", statusCode: 404 },
      { instanceId: b.id, action: "delete", status: "success" },
    ]);
    const ok = await c.call("PUT", "/instances", { action: "delete", id: [a.id, b.id] });
    expect(ok.status).toBe(202);
  });

  it("refuses to delete volumes that are not attached to the instance", async () => {
    const i = await c.runningInstance();
    const other = await c.createVolume();
    const r = await c.call("PUT", "/instances", { action: "delete", id: i.id, volume_ids: [other] });
    expect(r.status).toBe(400);
    expect((await c.instance(i.id)).status).toBe("running");
  });

  it("filters the list by status and tag", async () => {
    const a = await c.runningInstance({ hostname: "tagged", tags: [{ key: "Env", value: "prod" }, { key: "gpu" }] });
    await c.createInstance({ hostname: "plain" });
    expect((await c.call("GET", "/instances?status=running")).json.map((i: InstanceView) => i.id)).toEqual([a.id]);
    expect((await c.call("GET", "/instances?tag=env=prod&tag=gpu")).json.map((i: InstanceView) => i.id)).toEqual([a.id]);
    expect((await c.call("GET", "/instances?tag=env=dev")).json).toEqual([]);
    expect(a.tags[0]).toMatchObject({ key: "env", value: "prod" });
    expect(a.tags[0].id).toMatch(/^tag_/);
  });

  it("answers catalogue queries: instance types, availability, images, locations", async () => {
    const types = (await c.call("GET", "/instance-types")).json;
    for (const t of ["1H100.80S.32V", "1A100.22V", "1V100.6V", "CPU.4V.16G", "CPU.8V.32G", "1RTX6000ADA.10V"]) {
      expect(types.map((x: { instance_type: string }) => x.instance_type)).toContain(t);
    }
    expect(typeof types[0].price_per_hour).toBe("string");
    expect((await c.call("GET", "/instance-types?currency=eur")).json[0].currency).toBe("eur");
    expect((await c.call("GET", "/locations")).json.map((l: { code: string }) => l.code)).toEqual(["FIN-01", "FIN-02", "FIN-03", "ICE-01"]);
    const avail = (await c.call("GET", "/instance-availability?location_code=ICE-01")).json;
    expect(avail).toHaveLength(1);
    expect(avail[0].availabilities).toContain("1H100.80S.32V");
    expect((await c.call("GET", "/instance-availability/1H100.80S.32V?location_code=FIN-01")).json).toBe(true);
    expect((await c.call("GET", "/instance-availability/NOPE")).status).toBe(404);
    const cpuImages = (await c.call("GET", "/images?instance_type=CPU.4V.16G")).json;
    expect(cpuImages.map((i: { image_type: string }) => i.image_type)).toEqual(["ubuntu-24.04", "ubuntu-22.04"]);
    expect((await c.call("GET", "/images?instance_type=NOPE")).status).toBe(404);
  });

  it("honours a capacity map: types missing from a location give 503 No capacity available", async () => {
    const { sim: s2, c: c2 } = await startTestSim({ capacity: { "FIN-01": ["CPU.4V.16G"] } });
    try {
      const r = await c2.call("POST", "/instances", { instance_type: "1H100.80S.32V", image: "ubuntu-24.04", hostname: "x", location_code: "FIN-01" });
      expect(r.status).toBe(503);
      expect(r.json).toEqual({ code: "service_unavailable", message: "No capacity available" });
      expect((await c2.call("GET", "/instance-availability?location_code=FIN-01")).json[0].availabilities).toEqual(["CPU.4V.16G"]);
      expectResponsesConform(s2);
    } finally {
      await s2.close();
    }
  });

  it("hibernate (from offline) detaches all volumes and removes the instance", async () => {
    const i = await c.runningInstance();
    expect((await c.call("PUT", "/instances", { action: "hibernate", id: i.id })).status).toBe(400);
    await c.call("PUT", "/instances", { action: "shutdown", id: i.id });
    await c.waitInstance(i.id, "offline");
    expect((await c.call("PUT", "/instances", { action: "hibernate", id: i.id })).status).toBe(202);
    expect(await c.volume(i.os_volume_id)).toMatchObject({ status: "detached", instance_id: null });
  });

  it("a spot eviction (control endpoint) discontinues the instance, detaches volumes, stops billing", async () => {
    const i = await c.runningInstance({ is_spot: true, hostname: "spot" });
    expect(i).toMatchObject({ is_spot: true, contract: "SPOT", price_per_hour: 0.014 });
    const r = await c.control("POST", `instances/${i.id}/evict`);
    expect(r.json).toMatchObject({ status: "discontinued", volume_ids: [] });
    expect((await c.volume(i.os_volume_id)).status).toBe("detached");
    expect(sim.state().meters.find((m) => m.resource_id === i.id)?.running).toBe(false);
    expect((await c.call("PUT", "/instances", { action: "start", id: i.id })).status).toBe(400);
    expect((await c.call("PUT", "/instances", { action: "delete", id: i.id, volume_ids: [] })).status).toBe(202);
  });
});
