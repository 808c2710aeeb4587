// guardPhase: the one call the phase programs make, against the simulator.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BudgetExceededError, guardPhase, PreflightError } from "../../infra/money";
import { createVolume, simRig, type SimRig } from "./helpers";

describe("guardPhase", () => {
  let rig: SimRig;
  beforeAll(async () => {
    rig = await simRig({ capacity: { "FIN-01": ["1A100.22V"] } });
  });
  afterAll(() => rig.close());

  const dayInput = async (money: Record<string, unknown>) => {
    const sfs = await createVolume(rig.client, { name: `sfs-${Math.random().toString(36).slice(2, 8)}`, type: "NVMe_Shared", sizeGb: 220 });
    return {
      stack: "workshop-day",
      layer: "day" as const,
      money: money as never,
      placement: { instanceType: "1H100.80S.32V", location: "FIN-01", spot: true },
      osVolumeGb: 100,
      scratch: { sizeGb: 50, lifetime: "day" as const, deletePermanently: true },
      requiredSfs: { id: sfs.id, minSizeGb: 220 },
    };
  };

  it("chooses a fallback, forecasts with it and passes the budget with a warning", async () => {
    const input = await dayInput({ capacity: { fallbacks: [{ instanceType: "1A100.22V", spot: false }] }, budget: { limit: 175 } });
    const result = await guardPhase(rig.api, input);
    expect(result.preflight.choice).toMatchObject({ instanceType: "1A100.22V", spot: false, perHour: 1.797 });
    expect(result.preflight.attempts.map((a) => a.outcome)).toEqual(["no capacity", "no capacity", "chosen"]);
    // 80 h × (1.797 + 150 GB × 0.2/730) = $147.05 of $175: 84 %
    expect(result.report.forecast.phaseTotal).toBeCloseTo(147.05, 2);
    expect(result.budget.verdict).toBe("warn");
    expect(result.warnings[0]).toContain("WARNING forecast $147.05 of budget $175.00 (84 %)");
    expect(JSON.parse(JSON.stringify(result.report)).forecast.lines.length).toBeGreaterThan(3);
  });

  it("refuses over budget unless overridden with a reason", async () => {
    const input = await dayInput({ capacity: { fallbacks: [{ instanceType: "1A100.22V", spot: false }] }, budget: { limit: 100 } });
    await expect(guardPhase(rig.api, input)).rejects.toThrow(BudgetExceededError);
    const overridden = await guardPhase(rig.api, { ...input, money: { capacity: { fallbacks: [{ instanceType: "1A100.22V", spot: false }] }, budget: { limit: 100, override: true, overrideReason: "extra rehearsal" } } as never });
    expect(overridden.budget.verdict).toBe("overridden");
    expect(overridden.warnings[0]).toContain("reason: extra rehearsal");
  });

  it("fails on capacity before anything is created when no fallback fits", async () => {
    const input = await dayInput({ capacity: { spotToOnDemand: false } });
    await expect(guardPhase(rig.api, input)).rejects.toThrow(PreflightError);
    expect(rig.sim.state().instances).toHaveLength(0);
  });
});

describe("phaseMoneyCheck", () => {
  let rig: SimRig;
  beforeAll(async () => {
    rig = await simRig();
  });
  afterAll(() => rig.close());

  it("runs the preflight before creation and skips it once the instance is up", async () => {
    const { phaseMoneyCheck } = await import("../../infra/money");
    const { deployRunning } = await import("./helpers");
    const input = {
      stack: "workshop-day",
      layer: "day" as const,
      hostname: "comfyume-workshop-day",
      placement: { instanceType: "1H100.80S.32V", location: "FIN-01", spot: false },
      osVolumeGb: 100,
      scratch: { sizeGb: 50, lifetime: "day" as const, deletePermanently: true },
      money: { budget: { limit: 400, warnAtPercent: 80, override: false, balanceMarginPercent: 25, balanceMarginAmount: 0 } },
    };
    const before = await phaseMoneyCheck(rig.api, input);
    expect(before.mode).toBe("preflight");
    expect(before.info[0]).toContain("placement: 1H100.80S.32V on-demand in FIN-01 at $3.56/h");

    await deployRunning(rig.client, { hostname: "comfyume-workshop-day" });
    // Capacity is gone now, and the balance is low: neither matters for a stack that is already up.
    rig.sim.setFaults({ type: "no_capacity", instance_type: "1H100.80S.32V" });
    await fetch(`${rig.sim.origin}/_sim/balance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 5 }) });
    const after = await phaseMoneyCheck(rig.api, input);
    expect(after.mode).toBe("deployed");
    expect(after.report.forecast.phaseTotal).toBeCloseTo(80 * (3.56 + 150 * 0.2 / 730), 6);
    // …but the budget still applies.
    await expect(phaseMoneyCheck(rig.api, { ...input, money: { budget: { ...input.money.budget, limit: 100 } } })).rejects.toThrow(/refused, forecast \$288\.09 of budget \$100\.00/);
  });
});

describe("moneyGate (what the phase programs await)", () => {
  let rig: SimRig;
  beforeAll(async () => {
    rig = await simRig();
  });
  afterAll(() => rig.close());

  it("turns a month config into a preflight and fails with pulumi.RunError and the figures", async () => {
    const { moneyGate, phaseCheckInput } = await import("../../infra/money/phase-gate");
    const pulumi = await import("@pulumi/pulumi");
    const month = {
      stack: "workshop-month",
      layer: "month",
      sfs: { name: "comfyume-workshop-sfs", sizeGb: 220, location: "FIN-01", protect: true },
      scratch: { lifetime: "day", sizeGb: 50, deletePermanently: false },
      money: { budget: { limit: 50, warnAtPercent: 80, override: false, balanceMarginPercent: 25, balanceMarginAmount: 0 } },
    } as never;
    expect(phaseCheckInput(month)).toMatchObject({ layer: "month", sfsName: "comfyume-workshop-sfs", sfsGb: 220 });

    const report = (await moneyGate(month, undefined, { api: rig.api }))?.report;
    expect(report?.forecast.phaseTotal).toBeCloseTo(44, 6);
    expect(report?.budget.verdict).toBe("warn"); // $44 of $50

    await fetch(`${rig.sim.origin}/_sim/balance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 30 }) });
    const error = await moneyGate(month, undefined, { api: rig.api }).catch((e: unknown) => e);
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("insufficient Verda balance: $30.00 available, $55.00 needed");
  });

  it("never runs on destroy (COMFYUME_PULUMI_COMMAND=destroy)", async () => {
    const { moneyGate } = await import("../../infra/money/phase-gate");
    process.env.COMFYUME_PULUMI_COMMAND = "destroy";
    try {
      expect(await moneyGate({ stack: "workshop-month", layer: "month" } as never, undefined, { api: rig.api })).toBeUndefined();
    } finally {
      delete process.env.COMFYUME_PULUMI_COMMAND;
    }
  });

  it("skips (with a warning) when the program has no Verda credentials", async () => {
    const { moneyGate } = await import("../../infra/money/phase-gate");
    expect(await moneyGate({ stack: "s", layer: "month" } as never, undefined)).toBeUndefined();
  });
});
