// The pure cost model, budget guard, placement order and settings.
import { describe, expect, it } from "vitest";
import {
  alwaysOnForecast,
  checkBudget,
  costReport,
  costToDate,
  enforceBudget,
  externalCosts,
  formatCostReport,
  parseMoneySettings,
  periodForecast,
  placementCandidates,
  priceBookFrom,
  sumCost,
  BudgetExceededError,
  type PhasePlan,
  type Schedule,
} from "../../infra/money";

const book = priceBookFrom(
  "usd",
  [
    { instance_type: "1H100.80S.32V", price_per_hour: "3.56", spot_price: "1.78" },
    { instance_type: "1A100.22V", price_per_hour: 1.797, spot_price: "0.9" },
  ],
  [
    { type: "NVMe", price: { price_per_month_per_gb: 0.2 } },
    { type: "NVMe_Shared", price: { monthly_per_gb: 0.2 } },
  ],
);
const external = externalCosts(parseMoneySettings({}).forecast, "usd");
const plan: PhasePlan = {
  instance: { instanceType: "1H100.80S.32V", location: "FIN-01", spot: false, osVolumeGb: 100 },
  sfsGb: 220,
  scratch: { sizeGb: 50, lifetime: "month", deletePermanently: false },
};
const schedule: Schedule = { workshopDays: 8, hoursPerDay: 10, periodHours: 730, trashHours: 96 };

describe("cost model", () => {
  it("prices a workshop month line by line", () => {
    const lines = periodForecast(plan, book, external, schedule);
    const byItem = Object.fromEntries(lines.map((l) => [l.item.split(" ")[0] + (l.layer === "idle" ? "" : ` ${l.layer}`), l.cost]));
    expect(sumCost(lines, "day")).toBeCloseTo(80 * 3.56 + (80 * 100 * 0.2) / 730, 6); // 284.80 + 2.19
    expect(sumCost(lines, "month")).toBeCloseTo(44 + 10, 6); // SFS 220 GB + scratch 50 GB for 730 h
    expect(byItem.mello).toBeCloseTo(12.49 * 1.08, 6); // €12.49 in USD
    expect(byItem.R2).toBeCloseTo(200 * 0.015, 6);
    expect(sumCost(lines)).toBeCloseTo(284.8 + 2.1918 + 54 + 13.4892 + 3, 3);
  });

  it("an always-on instance costs about 7.5 times as much", () => {
    const phased = sumCost(periodForecast(plan, book, external, schedule));
    const alwaysOn = sumCost(alwaysOnForecast(plan, book, external, schedule));
    expect(sumCost(alwaysOnForecast(plan, book, external, schedule), "day")).toBeCloseTo(730 * 3.56 + 20, 6);
    expect(alwaysOn / phased).toBeGreaterThan(7);
    expect(alwaysOn / phased).toBeLessThan(8);
  });

  it("a daily scratch deleted to trash bills its 96 h of trash", () => {
    const lines = periodForecast({ ...plan, scratch: { sizeGb: 50, lifetime: "day", deletePermanently: false } }, book, external, schedule);
    const trash = lines.find((l) => l.item.includes("in trash"))!;
    expect(trash.hours).toBe(8 * 96);
    expect(trash.cost).toBeCloseTo((8 * 96 * 50 * 0.2) / 730, 6);
    const permanent = periodForecast({ ...plan, scratch: { sizeGb: 50, lifetime: "day", deletePermanently: true } }, book, external, schedule);
    expect(permanent.some((l) => l.item.includes("in trash"))).toBe(false);
  });

  it("cost to date is the hourly price since creation", () => {
    const now = new Date("2026-11-23T12:00:00Z");
    const [line] = costToDate([{ layer: "day", kind: "instance", id: "i", item: "x", createdAt: "2026-11-23T02:00:00Z", perHour: 3.56 }], now);
    expect(line!.hours).toBe(10);
    expect(line!.cost).toBeCloseTo(35.6, 6);
  });

  it("fails clearly for a type Verda does not price", () => {
    expect(() => periodForecast({ instance: { instanceType: "9X999", location: "FIN-01", spot: false, osVolumeGb: 50 } }, book, external, schedule)).toThrow(/no price for instance type 9X999/);
  });

  it("a report holds price, to-date, forecast and budget, and prints as a table", () => {
    const report = costReport({
      stack: "workshop-day",
      layer: "day",
      book,
      external,
      plan,
      schedule,
      budget: { limit: 300, warnAtPercent: 80, override: false },
      running: [{ layer: "day", kind: "instance", id: "i", item: "instance gpu (1H100.80S.32V)", createdAt: "2026-11-23T02:00:00Z", perHour: 3.56 }],
      now: new Date("2026-11-23T04:00:00Z"),
      balance: 900,
    });
    expect(report.phasePrice.perHour).toBeCloseTo(3.56 + 20 / 730, 6);
    expect(report.phasePrice.perDay).toBeCloseTo(10 * (3.56 + 20 / 730), 6);
    expect(report.toDate.total).toBeCloseTo(7.12, 6);
    expect(report.forecast.phaseTotal).toBeCloseTo(286.99, 2);
    expect(report.budget.verdict).toBe("warn");
    const text = formatCostReport(report);
    expect(text).toMatch(/phase price per day \(10 h\)\s+\$35\.87/);
    expect(text).toMatch(/budget used by forecast\s+96 %  WARN/);
    expect(text).toContain("instance gpu (1H100.80S.32V)");
    expect(JSON.parse(JSON.stringify(report)).budget.limit).toBe(300);
  });
});

describe("budget guard", () => {
  const base = { stack: "workshop-day", currency: "usd" as const };
  it("ok below the warning level, warn from 80 %, refused above the budget", () => {
    expect(checkBudget({ ...base, forecast: 100, budget: { limit: 200, warnAtPercent: 80, override: false } }).verdict).toBe("ok");
    const warn = checkBudget({ ...base, forecast: 160, budget: { limit: 200, warnAtPercent: 80, override: false } });
    expect(warn.verdict).toBe("warn");
    expect(warn.message).toContain("forecast $160.00 of budget $200.00 (80 %)");
    expect(() => enforceBudget({ ...base, forecast: 250, budget: { limit: 200, warnAtPercent: 80, override: false } })).toThrow(BudgetExceededError);
    expect(() => enforceBudget({ ...base, forecast: 250, budget: { limit: 200, warnAtPercent: 80, override: false } })).toThrow(
      /refused, forecast \$250\.00 of budget \$200\.00 \(125 %\) exceeds the budget by \$50\.00.*budget\.override true/,
    );
  });

  it("the override lets it through, naming the reason", () => {
    const check = enforceBudget({ ...base, forecast: 250, budget: { limit: 200, warnAtPercent: 80, override: true, overrideReason: "extra workshop day" } });
    expect(check.verdict).toBe("overridden");
    expect(check.message).toContain("reason: extra workshop day");
  });

  it("no limit: no guard", () => {
    expect(checkBudget({ ...base, forecast: 1e6, budget: { warnAtPercent: 80, override: false } }).verdict).toBe("no-budget");
  });

  it("settings: defaults, string numbers, and an override needs a reason", () => {
    const s = parseMoneySettings({ budget: { limit: "300" }, forecast: { workshopDays: "8" } });
    expect(s.budget).toMatchObject({ limit: 300, warnAtPercent: 80, override: false, balanceMarginPercent: 25 });
    expect(s.forecast).toMatchObject({ workshopDays: 8, hoursPerDay: 10, melloPerMonth: 12.49, r2PerGbMonth: 0.015 });
    expect(s.watchdog).toMatchObject({ cutoff: "22:00", idleMinutes: 180, dayStack: "workshop-day" });
    expect(() => parseMoneySettings({ budget: { override: true } })).toThrow(/comfyume:budget\.overrideReason: override needs overrideReason/);
    expect(() => parseMoneySettings({ capacity: { fallbacks: [{ location: "fin1" }] } })).toThrow(/comfyume:capacity\.fallbacks\.0\.location/);
  });
});

describe("placement order", () => {
  it("spot, then on demand, then fallbacks in config order, without repeats", () => {
    const list = placementCandidates(
      { instanceType: "1H100.80S.32V", location: "FIN-01", spot: true },
      { spotToOnDemand: true, fallbacks: [{ spot: false }, { instanceType: "1A100.22V" }, { location: "FIN-03", spot: false }] },
    );
    expect(list).toEqual([
      { instanceType: "1H100.80S.32V", location: "FIN-01", spot: true },
      { instanceType: "1H100.80S.32V", location: "FIN-01", spot: false },
      { instanceType: "1A100.22V", location: "FIN-01", spot: true },
      { instanceType: "1H100.80S.32V", location: "FIN-03", spot: false },
    ]);
  });
});
