// Budget guard: a phase's forecast against its configured budget. `over` refuses `up` unless the
// override setting (with a reason) is on; `warn` from the configured percentage (80 % default).
import { formatMoney } from "./prices";
import type { BudgetSettings } from "./settings";
import type { Currency } from "./types";

export type BudgetVerdict = "no-budget" | "ok" | "warn" | "over" | "overridden";

export interface BudgetCheck {
  verdict: BudgetVerdict;
  forecast: number;
  limit?: number;
  /** forecast / limit × 100, when a limit is set. */
  percentUsed?: number;
  message: string;
}

export interface BudgetInput {
  stack: string;
  /** This phase's forecast for the period. */
  forecast: number;
  currency: Currency;
  budget: Pick<BudgetSettings, "limit" | "warnAtPercent" | "override" | "overrideReason">;
}

export function checkBudget({ stack, forecast, currency, budget }: BudgetInput): BudgetCheck {
  const money = (n: number) => formatMoney(n, currency);
  if (budget.limit === undefined) {
    return { verdict: "no-budget", forecast, message: `${stack}: forecast ${money(forecast)}; no budget set (comfyume:budget.limit)` };
  }
  const limit = budget.limit;
  const percentUsed = limit > 0 ? (forecast / limit) * 100 : forecast > 0 ? Infinity : 0;
  const figures = `forecast ${money(forecast)} of budget ${money(limit)} (${Number.isFinite(percentUsed) ? percentUsed.toFixed(0) : "∞"} %)`;
  if (forecast > limit) {
    if (budget.override) {
      return { verdict: "overridden", forecast, limit, percentUsed, message: `${stack}: OVER BUDGET, allowed by comfyume:budget.override (reason: ${budget.overrideReason ?? "none given"}): ${figures}` };
    }
    return {
      verdict: "over",
      forecast,
      limit,
      percentUsed,
      message:
        `${stack}: refused, ${figures} exceeds the budget by ${money(forecast - limit)}. ` +
        `Lower the plan (comfyume:forecast.workshopDays/hoursPerDay, gpu.instanceType), raise comfyume:budget.limit, ` +
        `or for an emergency: scripts/pulumi config set --path comfyume:budget.override true --stack ${stack} && ` +
        `scripts/pulumi config set --path comfyume:budget.overrideReason '<why>' --stack ${stack}`,
    };
  }
  if (percentUsed >= budget.warnAtPercent) {
    return { verdict: "warn", forecast, limit, percentUsed, message: `${stack}: WARNING ${figures}, at or above the ${budget.warnAtPercent} % warning level` };
  }
  return { verdict: "ok", forecast, limit, percentUsed, message: `${stack}: ${figures}` };
}

export class BudgetExceededError extends Error {
  constructor(readonly check: BudgetCheck) {
    super(check.message);
    this.name = "BudgetExceededError";
  }
}

/** Throws on `over`; returns the check (the caller logs warn/overridden messages). */
export function enforceBudget(input: BudgetInput): BudgetCheck {
  const check = checkBudget(input);
  if (check.verdict === "over") throw new BudgetExceededError(check);
  return check;
}
