// One call for the phase programs: preflight (balance, capacity with fallbacks, the month's SFS),
// then the budget guard on the chosen placement's forecast, and the cost report for a stack
// output. Throws PreflightError / BudgetExceededError with the figures; the caller turns them
// into pulumi.RunError so preview and up fail with the message only.
import { enforceBudget, type BudgetCheck } from "./budget";
import { externalCosts } from "./external";
import type { PhasePlan, ScratchPlan } from "./model";
import { placementCandidates } from "./placement";
import { preflight, type PreflightResult } from "./preflight";
import { loadPriceBook } from "./prices";
import { costReport, type CostReport } from "./report";
import { parseMoneySettings, type MoneySettings } from "./settings";
import type { Placement } from "./types";
import type { MoneyApi } from "./verda-reads";

export interface PhaseGuardInput {
  stack: string;
  layer: "month" | "day";
  /** cfg.money from infra/config (absent keys take their defaults). */
  money?: Partial<MoneySettings>;
  /** Day: gpu.instanceType / gpu.location / gpu.spot. */
  placement?: Placement;
  /** Day: the placement already deployed (kept; no capacity check). */
  current?: Placement;
  osVolumeGb?: number;
  scratch: ScratchPlan;
  /** Month: sfs.sizeGb. Day: the month's SFS size when known (for the whole-month forecast). */
  sfsGb?: number;
  /** Day: the month stack's SFS id and the least size it must have. */
  requiredSfs?: { id?: string; name?: string; minSizeGb: number };
}

export interface PhaseGuardResult {
  preflight: PreflightResult;
  budget: BudgetCheck;
  report: CostReport;
  /** Lines for pulumi.log.info (warnings are in `warnings`). */
  info: string[];
  warnings: string[];
}

export async function guardPhase(api: MoneyApi, input: PhaseGuardInput, now = new Date()): Promise<PhaseGuardResult> {
  const settings = parseMoneySettings(input.money ?? {});
  const f = settings.forecast;
  const day = input.layer === "day";
  const ownScratch = input.scratch.lifetime === input.layer ? input.scratch : undefined;
  const pre = await preflight(api, {
    stack: input.stack,
    layer: input.layer,
    candidates: day && input.placement ? placementCandidates(input.placement, settings.capacity) : undefined,
    current: input.current,
    osVolumeGb: input.osVolumeGb,
    scratch: ownScratch,
    newSfsGb: day ? undefined : input.sfsGb,
    requiredSfs: input.requiredSfs,
    coverHours: day ? f.hoursPerDay : f.periodHours,
    margin: { percent: settings.budget.balanceMarginPercent, amount: settings.budget.balanceMarginAmount },
  });
  const book = await loadPriceBook(api, pre.balance.currency);
  const plan: PhasePlan = {
    instance: pre.choice ? { instanceType: pre.choice.instanceType, location: pre.choice.location, spot: pre.choice.spot, osVolumeGb: input.osVolumeGb ?? 0 } : undefined,
    sfsGb: pre.sfs?.sizeGb ?? input.sfsGb,
    scratch: input.scratch,
  };
  const report = costReport({
    stack: input.stack,
    layer: input.layer,
    book,
    external: externalCosts(f, pre.balance.currency),
    plan,
    schedule: { workshopDays: f.workshopDays, hoursPerDay: f.hoursPerDay, periodHours: f.periodHours, trashHours: f.trashHours },
    budget: settings.budget,
    running: [],
    now,
    balance: pre.balance.amount,
  });
  const budget = enforceBudget({ stack: input.stack, forecast: report.forecast.phaseTotal, currency: book.currency, budget: settings.budget });
  const warnings = budget.verdict === "warn" || budget.verdict === "overridden" ? [budget.message] : [];
  return { preflight: pre, budget, report, info: [...pre.report, budget.message], warnings };
}
