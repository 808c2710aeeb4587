import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

const HOUR = 3_600_000;

describe("simulator: billing meters and balance", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim({ balance: 500 })));
  beforeEach(() => sim.reset());
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  const meter = (id: string) => sim.state().meters.find((m) => m.resource_id === id)!;

  it("bills a running instance and its OS volume per hour from the catalogue; balance follows", async () => {
    const i = await c.runningInstance({ instance_type: "1H100.80S.32V", image: "ubuntu-24.04", os_volume: { name: "os", size: 73 } });
    sim.advanceClock(2 * HOUR);
    expect(meter(i.id).price_per_hour).toBe(3.56);
    expect(meter(i.id).cost).toBeCloseTo(2 * 3.56, 2);
    expect(meter(i.os_volume_id).cost).toBeCloseTo((2 * 73 * 0.2) / 730, 4);
    const state = sim.state();
    expect(state.total_cost).toBeCloseTo(2 * 3.56 + (2 * 73 * 0.2) / 730, 2);
    expect(state.burn_rate_per_hour).toBeCloseTo(3.56 + (73 * 0.2) / 730, 6);
    const balance = (await c.call("GET", "/balance")).json;
    expect(balance.currency).toBe("usd");
    expect(balance.amount).toBeCloseTo(500 - state.total_cost, 1);
  });

  it("a stopped instance keeps billing; a deleted one stops; an orphaned OS volume keeps billing", async () => {
    const i = await c.offlineInstance();
    sim.advanceClock(HOUR);
    expect(meter(i.id).running).toBe(true);
    expect(meter(i.id).cost).toBeCloseTo(0.0279, 3);
    await c.call("PUT", "/instances", { action: "delete", id: i.id, volume_ids: [] });
    const atDelete = meter(i.id).cost;
    sim.advanceClock(10 * HOUR);
    expect(meter(i.id).cost).toBeCloseTo(atDelete, 9);
    expect(meter(i.id).stopped_at).not.toBeNull();
    expect(meter(i.os_volume_id).running).toBe(true);
    expect(meter(i.os_volume_id).billed_hours).toBeGreaterThan(10.9);
  });

  it("volumes bill from creation, in trash too, and stop on permanent delete", async () => {
    const id = await c.createVolume({ size: 730 }); // $146/month = $0.2/hour
    sim.advanceClock(HOUR);
    expect(meter(id).cost).toBeCloseTo(0.2, 3);
    await c.call("PUT", "/volumes", { action: "delete", id });
    sim.advanceClock(HOUR);
    expect(meter(id).cost).toBeCloseTo(0.4, 3);
    await c.call("DELETE", `/volumes/${id}`, { is_permanent: true });
    sim.advanceClock(HOUR);
    expect(meter(id).cost).toBeCloseTo(0.4, 3);
  });

  it("instances that never run (error, stuck) are not billed", async () => {
    sim.setFaults({ type: "instance_outcome", outcome: "error", count: 1 });
    const id = await c.createInstance();
    await c.waitInstance(id, "error");
    sim.advanceClock(HOUR);
    expect(sim.state().meters.find((m) => m.resource_id === id)).toBeUndefined();
  });

  it("a speed factor makes simulated time run faster than real time", async () => {
    const { sim: fast, c: fc } = await startTestSim({ speed: 36_000 }); // 100 real ms = 1 simulated hour
    try {
      const id = await fc.createVolume({ size: 730 });
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 200));
      const elapsedHours = ((Date.now() - t0) * 36_000) / HOUR;
      const m = fast.state().meters.find((x) => x.resource_id === id)!;
      expect(m.billed_hours).toBeGreaterThanOrEqual(1.9);
      expect(m.billed_hours).toBeLessThan(elapsedHours + 0.5);
      expect(fast.state().clock.speed).toBe(36_000);
    } finally {
      await fast.close();
    }
  });

  it("with no credit left, creates answer 402 insufficient_funds", async () => {
    const low = await c.control("POST", "balance", { amount: 0 });
    expect(low.json.amount).toBeCloseTo(0, 6);
    const r = await c.call("POST", "/instances", { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "x", location_code: "FIN-01" });
    expect(r.status).toBe(402);
    expect(r.json.code).toBe("insufficient_funds");
    expect((await c.call("POST", "/volumes", { type: "NVMe", location_code: "FIN-01", size: 1, name: "v" })).status).toBe(402);
    await c.control("POST", "balance", { add: 10 });
    expect((await c.call("GET", "/balance")).json.amount).toBeCloseTo(10, 1);
  });

  it("optionally discontinues instances and trashes volumes once the credit is used up", async () => {
    const { sim: s2, c: c2 } = await startTestSim({ balance: 1, discontinueAtZeroBalance: true });
    try {
      const i = await c2.runningInstance({ instance_type: "1H100.80S.32V", image: "ubuntu-24.04" });
      s2.advanceClock(HOUR); // $3.56 > $1 credit
      expect((await c2.call("GET", "/balance")).json.amount).toBeLessThan(0);
      expect((await c2.instance(i.id)).status).toBe("discontinued");
      expect(await c2.volume(i.os_volume_id)).toMatchObject({ status: "deleted", is_permanently_deleted: false });
      expect(s2.state().meters.find((m) => m.resource_id === i.id)?.running).toBe(false);
      expectResponsesConform(s2);
    } finally {
      await s2.close();
    }
  });
});
