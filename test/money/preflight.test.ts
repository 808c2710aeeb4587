// Preflight against the simulator: the balance must cover the planned phase plus margin, capacity
// falls back in config order, the month's SFS must exist and be big enough.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { placementCandidates, preflight, PreflightError, type PreflightInput } from "../../infra/money";
import { createVolume, simRig, type SimRig } from "./helpers";

const H100 = { instanceType: "1H100.80S.32V", location: "FIN-01", spot: false };

function dayInput(over: Partial<PreflightInput> = {}): PreflightInput {
  return {
    stack: "workshop-day",
    layer: "day",
    candidates: [H100],
    osVolumeGb: 100,
    scratch: { sizeGb: 50, lifetime: "day", deletePermanently: false },
    coverHours: 10,
    margin: { percent: 25, amount: 0 },
    ...over,
  };
}

describe("preflight against the simulator", () => {
  let rig: SimRig;
  beforeAll(async () => {
    // H100 only in FIN-03; A100 in FIN-01 (so the configured H100 in FIN-01 has no capacity).
    rig = await simRig({ capacity: { "FIN-01": ["1A100.22V", "CPU.4V.16G"], "FIN-03": ["1H100.80S.32V"] } });
  });
  afterAll(() => rig.close());
  beforeEach(() => rig.sim.reset());

  it("insufficient balance blocks, with the figures in the message", async () => {
    await fetch(`${rig.sim.origin}/_sim/balance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 20 }) });
    const input = dayInput({ candidates: [{ ...H100, location: "FIN-03" }] });
    const error = await preflight(rig.api, input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreflightError);
    const message = (error as Error).message;
    // 3.56 + 100 GB × 0.2/730 + 50 GB × 0.2/730 = 3.6011 $/h; × 10 h × 1.25 = $45.01
    expect(message).toContain("insufficient Verda balance: $20.00 available, $45.01 needed");
    expect(message).toContain("this phase $3.6011/h");
    expect(message).toContain("short by $25.01");
    expect(message).toContain("Chosen placement: 1H100.80S.32V on-demand in FIN-03 at $3.56/h");
  });

  it("passes with enough balance and reports the choice and its price", async () => {
    const result = await preflight(rig.api, dayInput({ candidates: [{ ...H100, location: "FIN-03" }] }));
    expect(result.choice).toEqual({ ...H100, location: "FIN-03", perHour: 3.56 });
    expect(result.balance).toEqual({ amount: 1000, currency: "usd" });
    expect(result.required).toBeCloseTo(45.01, 2);
    expect(result.report.join("\n")).toMatch(/balance \$1000\.00 must cover \$45\.01/);
  });

  it("no capacity falls back to the next type in config order", async () => {
    const candidates = placementCandidates(H100, { spotToOnDemand: true, fallbacks: [{ instanceType: "1A100.22V" }, { location: "FIN-03" }] });
    const result = await preflight(rig.api, dayInput({ candidates }));
    expect(result.choice).toEqual({ instanceType: "1A100.22V", location: "FIN-01", spot: false, perHour: 1.797 });
    expect(result.attempts.map((a) => a.outcome)).toEqual(["no capacity", "chosen"]);
    expect(result.report[0]).toContain("after 1 fallback step(s)");
  });

  it("falls back to another location when no SFS ties the instance down", async () => {
    const candidates = placementCandidates(H100, { spotToOnDemand: true, fallbacks: [{ location: "FIN-03" }, { instanceType: "1A100.22V" }] });
    const result = await preflight(rig.api, dayInput({ candidates }));
    expect(result.choice).toMatchObject({ instanceType: "1H100.80S.32V", location: "FIN-03", perHour: 3.56 });
  });

  it("skips locations other than the SFS's and checks the SFS exists and is big enough", async () => {
    const sfs = await createVolume(rig.client, { name: "comfyume-workshop-sfs", type: "NVMe_Shared", sizeGb: 220 });
    const candidates = placementCandidates(H100, { spotToOnDemand: true, fallbacks: [{ location: "FIN-03" }, { instanceType: "1A100.22V" }] });
    const result = await preflight(rig.api, dayInput({ candidates, requiredSfs: { id: sfs.id, minSizeGb: 200 } }));
    expect(result.attempts.map((a) => a.outcome)).toEqual(["no capacity", "other location than the SFS", "chosen"]);
    expect(result.choice?.instanceType).toBe("1A100.22V");
    expect(result.sfs).toMatchObject({ id: sfs.id, sizeGb: 220, location: "FIN-01" });
    // The SFS already bills while the day runs: it counts against the balance.
    expect(result.existingPerHour).toBeCloseTo((220 * 0.2) / 730, 6);

    await expect(preflight(rig.api, dayInput({ candidates, requiredSfs: { id: sfs.id, minSizeGb: 300 } }))).rejects.toThrow(/is 220 GB, smaller than the 300 GB needed/);
    await expect(preflight(rig.api, dayInput({ candidates, requiredSfs: { name: "no-such-sfs", minSizeGb: 1 } }))).rejects.toThrow(/SFS \(name no-such-sfs\) does not exist/);
  });

  it("spot falls back to on demand first", async () => {
    // The simulator has one capacity pool; spot capacity is modelled here by refusing every spot query.
    const api = { ...rig.api, isAvailable: async (p: { spot: boolean; instanceType: string; location: string }) => !p.spot && (await rig.api.isAvailable(p)) };
    const candidates = placementCandidates({ ...H100, location: "FIN-03", spot: true }, { spotToOnDemand: true, fallbacks: [] });
    const result = await preflight(api, dayInput({ candidates }));
    expect(result.attempts.map((a) => [a.placement.spot, a.outcome, a.perHour])).toEqual([
      [true, "no capacity", 1.78],
      [false, "chosen", 3.56],
    ]);
  });

  it("fails listing every placement tried when none has capacity", async () => {
    rig.sim.setFaults({ type: "no_capacity", instance_type: "1A100.22V", location_code: "FIN-01" });
    const candidates = placementCandidates(H100, { spotToOnDemand: true, fallbacks: [{ instanceType: "1A100.22V" }] });
    const error = (await preflight(rig.api, dayInput({ candidates })).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/no instance capacity for any configured placement/);
    expect(error.message).toContain("1H100.80S.32V on-demand in FIN-01: no capacity ($3.56/h)");
    expect(error.message).toContain("1A100.22V on-demand in FIN-01: no capacity ($1.797/h)");
  });

  it("a month stack needs the SFS for the period covered", async () => {
    await fetch(`${rig.sim.origin}/_sim/balance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 50 }) });
    const month: PreflightInput = { stack: "workshop-month", layer: "month", newSfsGb: 220, scratch: { sizeGb: 50, lifetime: "month", deletePermanently: false }, coverHours: 730, margin: { percent: 25, amount: 0 } };
    // (44 + 10) × 1.25 = 67.50 > 50
    await expect(preflight(rig.api, month)).rejects.toThrow(/\$50\.00 available, \$67\.50 needed/);
  });
});
