// Money for serverless GPU workers (comfyume:inference = serverless), day layer: preflight (every
// configured compute is available at Verda, the balance covers the day), the period forecast
// (minimum replicas × the workshop hours + prewarm, plus a burst estimate) and the budget guard.
import { enforceBudget, type BudgetCheck } from "./budget";
import { externalCosts } from "./external";
import type { ServerlessPlan } from "./model";
import { PreflightError } from "./preflight";
import { formatMoney, loadPriceBook } from "./prices";
import { costReport, type CostReport } from "./report";
import { parseMoneySettings, type MoneySettings } from "./settings";
import type { PriceBook } from "./types";
import type { MoneyApi } from "./verda-reads";

export interface ServerlessGuardInput {
  stack: string;
  money?: Partial<MoneySettings>;
  plan: ServerlessPlan;
  /** comfyume:serverless.prices: per GPU-hour, overriding the catalogue's. */
  prices?: Record<string, { onDemand: number; spot: number }>;
  /** The month's SFS size (for the whole-environment forecast). */
  sfsGb?: number;
}

export interface ServerlessGuardResult {
  report: CostReport;
  budget: BudgetCheck;
  info: string[];
  warnings: string[];
}

/** The configured prices win over the catalogue's (Verda quotes serverless prices on 1-GPU instance types). */
export function withServerlessPrices(book: PriceBook, prices: ServerlessGuardInput["prices"]): PriceBook {
  return { ...book, serverless: { ...book.serverless, ...prices } };
}

/** Every deployment's compute (name × size) is listed by Verda and available now. */
export async function checkServerlessCompute(api: MoneyApi, stack: string, plan: ServerlessPlan): Promise<string[]> {
  if (!api.serverlessComputeResources) throw new Error("the money API has no serverlessComputeResources read");
  const listed = await api.serverlessComputeResources();
  const problems: string[] = [];
  for (const d of plan.deployments) {
    const r = listed.find((c) => c.name === d.gpu && (c.size ?? 1) === d.gpus);
    if (!r) problems.push(`${d.name}: Verda offers no serverless compute ${d.gpu} × ${d.gpus} (offered: ${[...new Set(listed.map((c) => `${c.name} × ${c.size}`))].join(", ") || "none"})`);
    else if (!r.is_available && d.minReplicas > 0) problems.push(`${d.name}: ${d.gpu} × ${d.gpus} is not available now`);
  }
  if (problems.length > 0) {
    throw new PreflightError(
      `${stack}: serverless compute check failed:\n  - ${problems.join("\n  - ")}\n` +
        "Pick an available GPU in comfyume:serverless.deployments (or give it minReplicas 0 so the day does not rely on it), or try again later.",
    );
  }
  return plan.deployments.map((d) => `${d.name}: ${d.gpu} × ${d.gpus} available`);
}

export async function guardServerlessDay(api: MoneyApi, input: ServerlessGuardInput, now = new Date()): Promise<ServerlessGuardResult> {
  const settings = parseMoneySettings(input.money ?? {});
  const f = settings.forecast;
  const available = await checkServerlessCompute(api, input.stack, input.plan);
  const balance = await api.balance();
  const book = withServerlessPrices(await loadPriceBook(api, balance.currency), input.prices);
  const report = costReport({
    stack: input.stack,
    layer: "day",
    book,
    external: externalCosts(f, balance.currency),
    plan: { serverless: input.plan, sfsGb: input.sfsGb },
    schedule: { workshopDays: f.workshopDays, hoursPerDay: f.hoursPerDay, periodHours: f.periodHours, trashHours: f.trashHours },
    budget: settings.budget,
    running: [],
    now,
    balance: balance.amount,
  });
  const money = (n: number) => formatMoney(n, balance.currency);
  // One workshop day (with prewarm and burst) must be covered, with the configured margin.
  const oneDay = report.forecast.byLayer.day / Math.max(1, f.workshopDays);
  const required = oneDay * (1 + settings.budget.balanceMarginPercent / 100) + settings.budget.balanceMarginAmount;
  if (balance.amount < required) {
    throw new PreflightError(
      `${input.stack}: insufficient Verda balance: ${money(balance.amount)} available, ${money(required)} needed for one serverless workshop day ` +
        `(${money(oneDay)} + ${settings.budget.balanceMarginPercent} % margin); short by ${money(required - balance.amount)}. Top up the balance in the Verda console, or lower serverless.scaling.minReplicas.`,
    );
  }
  const budget = enforceBudget({ stack: input.stack, forecast: report.forecast.phaseTotal, currency: book.currency, budget: settings.budget });
  const warnings = budget.verdict === "warn" || budget.verdict === "overridden" ? [budget.message] : [];
  return { report, budget, info: [...available, `serverless day: ${money(oneDay)} per workshop day; balance ${money(balance.amount)} covers ${money(required)}`, budget.message], warnings };
}
