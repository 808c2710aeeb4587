// The serverless cost model: a replica-hour priced from Verda's catalogue (or comfyume:serverless.prices),
// the period forecast (minimum replicas × workshop hours + prewarm, plus the burst estimate), the budget
// guard of a serverless day, and the forecast against what the simulator actually bills.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverlessForecast, sumCost, type ServerlessPlan } from "../../infra/money/model";
import { priceBookFrom, replicaHourly } from "../../infra/money/prices";
import { guardServerlessDay } from "../../infra/money/serverless";
import type { PriceBook } from "../../infra/money/types";
import { containerDeploymentProvider, deploymentScalingProvider } from "../../infra/providers";
import { verdaForMoney } from "../../infra/money/verda-reads";
import { startHarness, type Harness } from "../verda/harness";
import { waitFor } from "./helpers";

const BOOK: PriceBook = { currency: "usd", instanceTypes: {}, volumeTypes: { NVMe: 0.2, NVMe_Shared: 0.3 }, serverless: { H200: { onDemand: 2.49, spot: 1.25 } } };
const plan = (spot: boolean, extra: Partial<ServerlessPlan> = {}): ServerlessPlan => ({
  deployments: [{ name: `w-h200-${spot ? "spot" : "on-demand"}`, gpu: "H200", gpus: 1, spot, minReplicas: 1 }],
  prewarmMinutes: 0,
  burstReplicaHours: 0,
  ...extra,
});

describe("serverless forecast", () => {
  it("a 3-hour day at min 1 replica: spot 1.25 × 3 = 3.75, on-demand 2.49 × 3 = 7.47", () => {
    const day = { workshopDays: 1, hoursPerDay: 3 };
    expect(sumCost(serverlessForecast(plan(true), BOOK, day))).toBeCloseTo(3.75, 10);
    expect(sumCost(serverlessForecast(plan(false), BOOK, day))).toBeCloseTo(7.47, 10);
  });

  it("counts the prewarm minutes and the burst estimate, per workshop day", () => {
    const lines = serverlessForecast(plan(true, { prewarmMinutes: 30, burstReplicaHours: 2 }), BOOK, { workshopDays: 8, hoursPerDay: 3 });
    expect(lines.map((l) => [l.hours, l.perHour])).toEqual([[8 * 3.5, 1.25], [16, 1.25]]);
    expect(lines[0]!.item).toContain("incl. 30 min prewarm");
    expect(sumCost(lines)).toBeCloseTo(8 * 3.5 * 1.25 + 16 * 1.25, 10);
  });

  it("prices a replica from the 1-GPU instance type's serverless price, × GPUs; a missing price names the setting", () => {
    const book = priceBookFrom("usd", [{ instance_type: "1H100.80S.22V", model: "H100", price_per_hour: "3.17", spot_price: "0.31", serverless_price: "1.75", serverless_spot_price: "0.87", gpu: { number_of_gpus: 1 } }], []);
    expect(replicaHourly(book, { gpu: "H100", gpus: 2, spot: false })).toBeCloseTo(3.5, 10);
    expect(replicaHourly(book, { gpu: "H100", gpus: 1, spot: true })).toBeCloseTo(0.87, 10);
    expect(() => replicaHourly(book, { gpu: "B300", gpus: 1, spot: true })).toThrow(/comfyume:serverless\.prices\.B300\.spot/);
  });
});

describe("npm run cost's plan from the stack files", () => {
  it("a serverless day plans its deployments' minimum replicas (no instance, no scratch) and its prices", async () => {
    const { planFromConfigs, serverlessPricesOf } = await import("../../infra/money/plan-from-config");
    const day = {
      "comfyume:phase": "testing-day",
      "comfyume:inference": "serverless",
      "comfyume:serverless": { deployments: [{ gpu: "H200", spot: true }, { gpu: "B300", spot: false, minReplicas: 0 }], prewarmMinutes: 15, prices: { H200: { onDemand: 2.49, spot: 1.25 } } },
    };
    const p = planFromConfigs({ day, month: { "comfyume:sfs": { sizeGb: 300 } } });
    expect(p).toEqual({
      sfsGb: 300,
      serverless: {
        deployments: [
          { name: "comfyume-testing-worker-h200-spot", gpu: "H200", gpus: 1, spot: true, minReplicas: 1 },
          { name: "comfyume-testing-worker-b300-on-demand", gpu: "B300", gpus: 1, spot: false, minReplicas: 0 },
        ],
        prewarmMinutes: 15,
        burstReplicaHours: 0,
      },
    });
    expect(serverlessPricesOf(day)).toEqual({ H200: { onDemand: 2.49, spot: 1.25 } });
    // 3 h + 15 min prewarm at one spot H200; the B300 at min 0 adds nothing until it bursts.
    expect(sumCost(serverlessForecast(p.serverless!, BOOK, { workshopDays: 1, hoursPerDay: 3 }))).toBeCloseTo(3.25 * 1.25, 10);
  });
});

describe("serverless day against the simulator", () => {
  // The harness points the providers (VERDA_* environment) at the simulator.
  let rig: Harness & { api: ReturnType<typeof verdaForMoney>["api"] };
  beforeAll(async () => {
    const h = await startHarness({ host: "127.0.104.6", timing: { replicaColdStartMs: 5 } });
    rig = Object.assign(h, { api: verdaForMoney({ clientId: h.sim.clientId, clientSecret: h.sim.clientSecret, baseUrl: h.sim.baseUrl }).api });
  });
  afterAll(async () => rig?.close());

  const input = (extra: Record<string, unknown> = {}) => ({
    stack: "testing-day",
    plan: plan(true),
    prices: { H200: { onDemand: 2.49, spot: 1.25 } },
    money: { forecast: { workshopDays: 1, hoursPerDay: 3 }, ...extra } as never,
  });

  it("forecasts the day and passes the budget; a budget below the forecast refuses it with the figures", async () => {
    const ok = await guardServerlessDay(rig.api, input());
    expect(ok.report.forecast.byLayer.day).toBeCloseTo(3.75, 10);
    expect(ok.report.phasePrice.perHour).toBeCloseTo(1.25, 10);
    await expect(guardServerlessDay(rig.api, input({ budget: { limit: 2 } }))).rejects.toThrow(/refused, forecast \$3\.75 of budget \$2\.00/);
  });

  it("what the simulator bills for 3 hours at 1 spot replica is the forecast", async () => {
    const checked = await containerDeploymentProvider.check!({} as never, {
      name: "w-h200-spot",
      compute: { name: "H200", size: 1 },
      isSpot: true,
      containers: [{ image: "ghcr.io/ahelme/comfyume-worker:v1", port: 8188 }],
      scaling: { minReplicas: 0, maxReplicas: 0 },
    });
    await containerDeploymentProvider.create(checked.inputs!);
    const day = await deploymentScalingProvider.check!({} as never, { deployment: "w-h200-spot", scaling: { minReplicas: 1, maxReplicas: 10 } });
    const scaled = await deploymentScalingProvider.create(day.inputs!);
    const meter = () => rig.sim.state().meters.find((m) => m.resource_type === "replica" && m.running);
    await waitFor("a running replica", async () => meter());
    rig.sim.advanceClock(3 * 3600_000);
    await deploymentScalingProvider.delete!(scaled.id, scaled.outs!);
    await waitFor("the replica stopped", async () => (meter() ? undefined : true));
    const billed = rig.sim.state().meters.filter((m) => m.resource_type === "replica").reduce((sum, m) => sum + m.cost, 0);
    expect(billed).toBeCloseTo(3.75, 2);
  });
});
