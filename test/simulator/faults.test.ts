import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

describe("simulator: fault injection", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim()));
  beforeEach(() => sim.reset());
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("http: status, code, message and count per method+path pattern, then normal service", async () => {
    const i = await c.runningInstance();
    sim.setFaults({ type: "http", method: "GET", path: "/v1/instances/{instance_id}", status: 500, count: 2 });
    const seen: number[] = [];
    for (let n = 0; n < 3; n++) seen.push((await c.call("GET", `/instances/${i.id}`)).status);
    expect(seen).toEqual([500, 500, 200]);
    sim.setFaults({ type: "http", path: "/v1/volumes*", status: 503, code: "service_unavailable", message: "maintenance", count: 1 });
    const r = await c.call("GET", "/volumes/trash");
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ code: "service_unavailable", message: "maintenance" });
    expect(sim.state().faults).toEqual([]);
  });

  it("http: 429 with Retry-After, and rejecting JSON token requests by content type", async () => {
    sim.setFaults([
      { type: "http", method: "GET", path: "/v1/balance", status: 429, retry_after: 1, count: 1 },
      { type: "http", method: "POST", path: "/v1/oauth2/token", content_type: "application/json", status: 400, message: "unsupported grant type" },
    ]);
    const creds = { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret };
    const json = await c.raw("POST", "/oauth2/token", creds);
    expect(json.status).toBe(400);
    expect(json.json).toEqual({ code: "invalid_request", message: "unsupported grant type" });
    const form = await c.raw("POST", "/oauth2/token", creds, { form: true });
    expect(form.status).toBe(200);
    const limited = await c.raw("GET", "/balance", undefined, { token: form.json.access_token });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.json.code).toBe("rate_limit_exceeded");
  });

  it("latency: adds delay to matching requests", async () => {
    await c.login();
    sim.setFaults({ type: "latency", method: "GET", path: "/v1/locations", ms: 150, count: 1 });
    const t0 = Date.now();
    expect((await c.call("GET", "/locations")).status).toBe(200);
    const delayed = Date.now() - t0;
    expect(delayed).toBeGreaterThanOrEqual(140);
    expect(sim.state().faults).toEqual([]); // count 1: used up
    const t1 = Date.now();
    await c.call("GET", "/locations");
    expect(Date.now() - t1).toBeLessThan(delayed);
  });

  it("no_capacity: 503 on create for a type/location, availability reports false", async () => {
    sim.setFaults({ type: "no_capacity", instance_type: "1H100.80S.32V", location_code: "FIN-03" });
    const r = await c.call("POST", "/instances", { instance_type: "1H100.80S.32V", image: "ubuntu-24.04", hostname: "g", location_code: "FIN-03" });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ code: "service_unavailable", message: "No capacity available" });
    expect((await c.call("GET", "/instance-availability/1H100.80S.32V?location_code=FIN-03")).json).toBe(false);
    expect((await c.call("GET", "/instance-availability/1H100.80S.32V?location_code=FIN-01")).json).toBe(true);
    expect((await c.call("GET", "/instance-availability?location_code=FIN-03")).json[0].availabilities).not.toContain("1H100.80S.32V");
    await c.runningInstance({ instance_type: "1H100.80S.32V", image: "ubuntu-24.04", location_code: "FIN-01" });
    expect(sim.state().volumes.filter((v) => v.location === "FIN-03")).toEqual([]);
  });

  it("instance_outcome: error, installation_failed, no_capacity, stuck in provisioning", async () => {
    sim.setFaults([
      { type: "instance_outcome", outcome: "error", hostname: "e", count: 1 },
      { type: "instance_outcome", outcome: "installation_failed", hostname: "f", count: 1 },
      { type: "instance_outcome", outcome: "no_capacity", hostname: "n", count: 1 },
      { type: "instance_outcome", outcome: "stuck_provisioning", hostname: "s", count: 1 },
    ]);
    const e = await c.createInstance({ hostname: "e" });
    const f = await c.createInstance({ hostname: "f" });
    const n = await c.createInstance({ hostname: "n" });
    const s = await c.createInstance({ hostname: "s" });
    await c.waitInstance(e, "error");
    await c.waitInstance(f, "installation_failed");
    await c.waitInstance(n, "no_capacity");
    await new Promise((r) => setTimeout(r, 150));
    expect((await c.instance(s)).status).toBe("provisioning");
    // A stuck instance can still be deleted with its OS volume.
    const stuck = await c.instance(s);
    expect((await c.call("PUT", "/instances", { action: "delete", id: s, volume_ids: [stuck.os_volume_id], delete_permanently: true })).status).toBe(202);
    // The next instance with the same hostname is healthy again.
    await c.runningInstance({ hostname: "e" });
  });

  it("insufficient_funds: 402 on create calls", async () => {
    sim.setFaults({ type: "insufficient_funds", count: 1 });
    const r = await c.call("POST", "/volumes", { type: "NVMe", location_code: "FIN-01", size: 1, name: "v" });
    expect(r.status).toBe(402);
    expect(r.json.code).toBe("insufficient_funds");
    expect((await c.call("GET", "/balance")).status).toBe(200);
    await c.createVolume();
  });

  it("sfs_pseudo_path_change: the SFS pseudo path (and mount data) change after a delay", async () => {
    const id = await c.createVolume({ type: "NVMe_Shared", name: "shared", size: 10 });
    const before = (await c.waitVolume(id, "created")).pseudo_path;
    sim.setFaults({ type: "sfs_pseudo_path_change", volume_name: "shared", after_ms: 50, count: 1 });
    await new Promise((r) => setTimeout(r, 100));
    const after = await c.volume(id);
    expect(after.pseudo_path).not.toBe(before);
    expect(after.mount_command).toContain(after.pseudo_path);
    expect(after.target).toContain(after.pseudo_path);
    // Also for an SFS created after the rule.
    sim.setFaults({ type: "sfs_pseudo_path_change", volume_name: "later", after_ms: 80, count: 1 });
    const later = await c.createVolume({ type: "NVMe_Shared", name: "later", size: 10 });
    const first = (await c.waitVolume(later, "created")).pseudo_path;
    await new Promise((r) => setTimeout(r, 120));
    expect((await c.volume(later)).pseudo_path).not.toBe(first);
  });

  it("rules are set and cleared through the control endpoints; bad rules are refused", async () => {
    const added = await c.control("POST", "faults", [{ type: "http", method: "GET", path: "/v1/locations", status: 500 }]);
    expect(added.status).toBe(200);
    expect(added.json.added[0].id).toMatch(/^fault-/);
    expect((await c.control("GET", "faults")).json).toHaveLength(1);
    expect((await c.call("GET", "/locations")).status).toBe(500);
    expect((await c.control("DELETE", "faults")).status).toBe(204);
    expect((await c.call("GET", "/locations")).status).toBe(200);
    const bad = await c.control("POST", "faults", { type: "http", status: "x" });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/fault rule 0: status/);
    expect((await c.control("POST", "faults", { type: "explode" })).status).toBe(400);
    expect((await c.control("POST", "faults", { type: "latency", ms: 5, typo: 1 })).status).toBe(400);
  });

  it("rules given at start apply, and come back after reset", async () => {
    const { sim: s2, c: c2 } = await startTestSim({ faults: [{ type: "http", method: "GET", path: "/v1/locations", status: 500, count: 1 }] });
    try {
      expect((await c2.call("GET", "/locations")).status).toBe(500);
      expect((await c2.call("GET", "/locations")).status).toBe(200);
      s2.reset();
      expect((await c2.call("GET", "/locations")).status).toBe(500);
    } finally {
      await s2.close();
    }
  });

  // Fault kinds for the nightly destroy: a 207 partial result on the delete action, and a scratch
  // volume that stays `detaching` after its instance is deleted (until the rule is cleared).
  it("action_partial: delete answers 207 with a per-instance error and the instance stays", async () => {
    const i = await c.runningInstance();
    sim.setFaults({ type: "action_partial", action: "delete", status_code: 503, message: "host busy", count: 1 });
    const r = await c.call("PUT", "/instances", { action: "delete", id: i.id });
    expect(r.status).toBe(207);
    expect(r.json).toEqual([{ instanceId: i.id, action: "delete", status: "error", error: "host busy", statusCode: 503 }]);
    expect((await c.instance(i.id)).status).toBe("running");
    // Other actions are not caught, and the rule was used up: the next delete goes through.
    expect((await c.call("PUT", "/instances", { action: "delete", id: i.id })).status).toBe(202);
  });

  it("volume_stuck_detaching: the block volume stays detaching (not attachable) until the rule is cleared", async () => {
    const vol = await c.createVolume({ type: "NVMe", name: "scratch", size: 10 });
    await c.waitVolume(vol, "detached");
    const i = await c.createInstance({ existing_volumes: [vol] });
    await c.waitInstance(i, "running");
    sim.setFaults({ type: "volume_stuck_detaching", volume_name: "scratch" });
    expect((await c.call("PUT", "/instances", { action: "delete", id: i })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect((await c.volume(vol)).status).toBe("detaching");
    const again = await c.call("POST", "/instances", {
      instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "sim-test", location_code: "FIN-01", existing_volumes: [vol],
    });
    expect(again.status).toBe(400);
    expect(again.json.message).toMatch(/not detached/);
    sim.clearFaults();
    await c.waitVolume(vol, "detached");
  });
});
