// What the phase programs call on every preview/up of a month or day stack. The preflight runs
// only when the stack is about to create or replace its billed resource: for a day stack, when no
// live instance with the configured hostname and placement exists; for a month stack, when no SFS
// with the configured name exists. The budget guard and the cost report run every time.
import { enforceBudget } from "./budget";
import { externalCosts } from "./external";
import { guardPhase, type PhaseGuardInput, type PhaseGuardResult } from "./guard";
import { placementCandidates } from "./placement";
import { loadPriceBook } from "./prices";
import { costReport, type CostReport } from "./report";
import { parseMoneySettings } from "./settings";
import type { MoneyApi } from "./verda-reads";
import { instanceNotLive } from "../verda/statuses";

export interface PhaseCheckInput extends PhaseGuardInput {
  /** Day: the instance's hostname (how an existing deployment is recognised). */
  hostname?: string;
  /** Month: the SFS's name. */
  sfsName?: string;
}

export interface PhaseCheck {
  /** "preflight" when the stack creates/replaces; "deployed" when it is already up as configured. */
  mode: "preflight" | "deployed";
  guard?: PhaseGuardResult;
  report: CostReport;
  info: string[];
  warnings: string[];
}


async function alreadyDeployed(api: MoneyApi, input: PhaseCheckInput): Promise<boolean> {
  if (input.layer === "day") {
    const p = input.placement;
    if (!input.hostname || !p) return false;
    // Any of the configured placements counts (a fallback chosen earlier is still "as configured");
    // a type or location outside them means the stack will replace the instance: preflight.
    const candidates = placementCandidates(p, parseMoneySettings(input.money ?? {}).capacity);
    return (await api.instances()).some(
      (i) =>
        i.hostname === input.hostname &&
        !instanceNotLive(i.status) &&
        candidates.some((c) => c.instanceType === i.instance_type && c.location === i.location && c.spot === Boolean(i.is_spot)),
    );
  }
  if (!input.sfsName) return false;
  return (await api.volumes()).some((v) => v.name === input.sfsName && v.status !== "deleted");
}

export async function phaseMoneyCheck(api: MoneyApi, input: PhaseCheckInput, now = new Date()): Promise<PhaseCheck> {
  if (!(await alreadyDeployed(api, input))) {
    const guard = await guardPhase(api, input, now);
    return { mode: "preflight", guard, report: guard.report, info: guard.info, warnings: guard.warnings };
  }
  const settings = parseMoneySettings(input.money ?? {});
  const f = settings.forecast;
  const balance = await api.balance();
  const book = await loadPriceBook(api, balance.currency);
  const report = costReport({
    stack: input.stack,
    layer: input.layer,
    book,
    external: externalCosts(f, balance.currency),
    plan: {
      instance: input.placement ? { ...input.placement, osVolumeGb: input.osVolumeGb ?? 0 } : undefined,
      sfsGb: input.sfsGb,
      scratch: input.scratch,
    },
    schedule: { workshopDays: f.workshopDays, hoursPerDay: f.hoursPerDay, periodHours: f.periodHours, trashHours: f.trashHours },
    budget: settings.budget,
    running: [],
    now,
    balance: balance.amount,
  });
  // Already up: nothing new is bought, but a budget lowered below the forecast still stops `up`.
  const budget = enforceBudget({ stack: input.stack, forecast: report.forecast.phaseTotal, currency: book.currency, budget: settings.budget });
  return {
    mode: "deployed",
    report,
    info: [`${input.stack}: already deployed as configured; preflight skipped`, budget.message],
    warnings: budget.verdict === "warn" || budget.verdict === "overridden" ? [budget.message] : [],
  };
}
