import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

describe("simulator: control endpoints", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim({ startTime: "2026-11-01T00:00:00Z", balance: 100 })));
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("GET /_sim/state shows resources, meters, balance and clock", async () => {
    const i = await c.runningInstance();
    const r = await c.control("GET", "state");
    expect(r.status).toBe(200);
    expect(r.json.instances.map((x: { id: string }) => x.id)).toEqual([i.id]);
    expect(r.json.volumes.map((x: { id: string }) => x.id)).toEqual([i.os_volume_id]);
    expect(r.json.meters.map((m: { resource_id: string }) => m.resource_id).sort()).toEqual([i.id, i.os_volume_id].sort());
    expect(r.json.balance).toBeLessThanOrEqual(100);
    expect(r.json.clock.now.startsWith("2026-11-01T00:00")).toBe(true);
    expect(r.json.tokens.issued).toBe(1);
    expect(i.created_at.startsWith("2026-11-01")).toBe(true);
  });

  it("POST /_sim/clock advances simulated time; POST /_sim/balance sets and adds credit", async () => {
    const r = await c.control("POST", "clock", { advance_hours: 24 });
    expect(r.json.now.startsWith("2026-11-02")).toBe(true);
    expect((await c.control("POST", "clock", { advance_ms: -1 })).status).toBe(400);
    expect((await c.control("POST", "balance", { amount: 42 })).json.amount).toBeCloseTo(42, 6);
    expect((await c.control("POST", "balance", { add: 8 })).json.amount).toBeCloseTo(50, 3);
  });

  it("POST /_sim/tokens/expire invalidates tokens; exchanges are recorded and can be cleared", async () => {
    expect((await c.call("GET", "/balance")).status).toBe(200);
    expect((await c.control("POST", "tokens/expire", {})).status).toBe(204);
    expect((await c.call("GET", "/balance")).status).toBe(401);
    const ex = (await c.control("GET", "exchanges")).json;
    expect(ex.at(-1)).toMatchObject({ method: "GET", url: "/v1/balance", status: 401 });
    expect(ex.some((x: { url: string }) => x.url.startsWith("/_sim"))).toBe(false);
  });

  it("POST /_sim/reset empties everything; unknown control paths answer 404", async () => {
    await c.login();
    await c.createVolume();
    expect((await c.control("POST", "reset")).status).toBe(204);
    const s = (await c.control("GET", "state")).json;
    expect([s.instances, s.volumes, s.meters, s.faults]).toEqual([[], [], [], []]);
    expect(s.balance).toBe(100);
    expect((await c.call("GET", "/volumes")).status).toBe(200); // tokens survive a reset
    expect((await c.control("GET", "nope")).status).toBe(404);
  });
});
