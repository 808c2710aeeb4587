// The benchmark's workshop month as a test: the tool's forecast and the simulator's billing meters
// agree within 2 %, and the phases are several times cheaper than an always-on instance.
import { describe, expect, it } from "vitest";
import { runWorkshopMonthBench } from "../bench/workshop-month-cost";

describe("workshop month: forecast vs simulator meters", () => {
  it.each([1, 3600])("agree within 2 percent at clock speed %i×", async (speed) => {
    const r = await runWorkshopMonthBench(speed);
    expect(r.agreementPercent).toBeLessThan(2);
    expect(r.verdaForecast).toBeCloseTo(284.8 + 2.1918 + 44 + 10, 2);
    expect(r.ratio).toBeGreaterThan(7);
    expect(r.table).toContain("always-on / phased ratio");
  });
});
