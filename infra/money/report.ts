// The cost report of one stack: phase price before launch, cost to date, the period's forecast
// and the budget check. `costReport` is pure, so the program can export it as a stack output
// and `npm run cost` prints the same data.
import { checkBudget, type BudgetCheck } from "./budget";
import { costToDate, layerHourlyLines, periodForecast, sumCost, sumPerHour, type BilledResource, type PhasePlan, type Schedule, type ToDateLine } from "./model";
import { formatMoney, formatPerHour } from "./prices";
import type { BudgetSettings } from "./settings";
import { renderTable } from "./table";
import type { CostLine, Currency, ExternalCosts, Layer, PriceBook } from "./types";

export interface CostReportInput {
  stack: string;
  layer: Layer;
  book: PriceBook;
  external: ExternalCosts;
  plan: PhasePlan;
  schedule: Schedule;
  budget: Pick<BudgetSettings, "limit" | "warnAtPercent" | "override" | "overrideReason">;
  /** This stack's resources billing now (empty before launch). */
  running: BilledResource[];
  now: Date;
  balance?: number;
}

export interface CostReport {
  stack: string;
  layer: Layer;
  currency: Currency;
  generatedAt: string;
  phasePrice: { perHour: number; perDay: number; hoursPerDay: number; lines: CostLine[] };
  toDate: { total: number; lines: ToDateLine[] };
  forecast: { lines: CostLine[]; byLayer: Record<Layer, number>; phaseTotal: number; total: number; periodHours: number };
  budget: BudgetCheck;
  balance?: number;
}

export function costReport(input: CostReportInput): CostReport {
  const { book, external, plan, schedule, layer } = input;
  const phaseLines = layerHourlyLines(layer, plan, book, external);
  const perHour = sumPerHour(phaseLines);
  // A day bills for the workshop hours; the other layers bill around the clock.
  const hoursPerDay = layer === "day" ? schedule.hoursPerDay : 24;
  const forecastLines = periodForecast(plan, book, external, schedule);
  const byLayer = { idle: sumCost(forecastLines, "idle"), month: sumCost(forecastLines, "month"), day: sumCost(forecastLines, "day") };
  const toDateLines = costToDate(input.running, input.now);
  return {
    stack: input.stack,
    layer,
    currency: book.currency,
    generatedAt: input.now.toISOString(),
    phasePrice: { perHour, perDay: perHour * hoursPerDay, hoursPerDay, lines: phaseLines },
    toDate: { total: toDateLines.reduce((s, l) => s + l.cost, 0), lines: toDateLines },
    forecast: { lines: forecastLines, byLayer, phaseTotal: byLayer[layer], total: sumCost(forecastLines), periodHours: schedule.periodHours },
    budget: checkBudget({ stack: input.stack, forecast: byLayer[layer], currency: book.currency, budget: input.budget }),
    balance: input.balance,
  };
}

export function formatCostReport(r: CostReport): string {
  const m = (n: number) => formatMoney(n, r.currency);
  const rate = (n: number) => formatPerHour(n, r.currency);
  const summary = renderTable(
    ["", r.stack],
    [
      ["phase price per hour", rate(r.phasePrice.perHour)],
      [`phase price per day (${r.phasePrice.hoursPerDay} h)`, m(r.phasePrice.perDay)],
      ["cost to date (running resources)", m(r.toDate.total)],
      [`forecast, this phase (${r.forecast.periodHours} h period)`, m(r.forecast.phaseTotal)],
      ["forecast, whole environment", m(r.forecast.total)],
      ["budget", r.budget.limit === undefined ? "not set" : m(r.budget.limit)],
      ["budget used by forecast", r.budget.percentUsed === undefined ? "-" : `${r.budget.percentUsed.toFixed(0)} %  ${r.budget.verdict.toUpperCase()}`],
      ...(r.balance !== undefined ? [["Verda balance", m(r.balance)]] : []),
    ],
    [1],
  );
  const forecast = renderTable(
    ["layer", "forecast item", "per hour", "hours", "cost"],
    r.forecast.lines.map((l) => [l.layer, l.item, rate(l.perHour), l.hours.toFixed(0), m(l.cost)]),
    [2, 3, 4],
  );
  const sections = [summary, "", forecast];
  if (r.toDate.lines.length > 0) {
    sections.push(
      "",
      renderTable(
        ["running resource", "since", "hours", "per hour", "to date"],
        r.toDate.lines.map((l) => [l.item, l.createdAt.replace(/\.\d+Z$/, "Z"), l.hours.toFixed(1), rate(l.perHour), m(l.cost)]),
        [2, 3, 4],
      ),
    );
  }
  if (r.budget.verdict === "over" || r.budget.verdict === "warn" || r.budget.verdict === "overridden") sections.push("", r.budget.message);
  return sections.join("\n");
}
