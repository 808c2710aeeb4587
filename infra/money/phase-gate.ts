// The money gate for the phase programs, run before any resource is declared (the program awaits
// it): preflight when the stack creates or replaces its billed resource, the budget guard always,
// figures logged; failures become pulumi.RunError so preview/up stop with the message only.
import * as pulumi from "@pulumi/pulumi";
import type { DayConfig, MonthConfig } from "../config";
import { BudgetExceededError } from "./budget";
import { phaseMoneyCheck, type PhaseCheckInput } from "./phase-check";
import { PreflightError } from "./preflight";
import type { CostReport } from "./report";
import type { Placement } from "./types";
import { oneRoundReads, verdaForMoney, type MoneyApi } from "./verda-reads";
import { isDestroyCommand, pulumiCommand } from "../config/operation";
import { guardServerlessDay } from "./serverless";
import { serverlessPlanOf } from "../phases/serverless";

export interface GateCredentials {
  clientId: string;
  clientSecret: string;
  baseUrl?: string;
}

/** The plain input of phaseMoneyCheck from a validated month/day config. */
export function phaseCheckInput(cfg: MonthConfig | DayConfig, monthSfs?: { id?: string; sizeGb?: number }): PhaseCheckInput {
  const common = { stack: cfg.stack, money: cfg.money, scratch: { sizeGb: cfg.scratch.sizeGb, lifetime: cfg.scratch.lifetime, deletePermanently: cfg.scratch.deletePermanently } };
  if (cfg.layer === "month") {
    return { ...common, layer: "month", sfsName: cfg.sfs.name, sfsGb: cfg.sfs.sizeGb };
  }
  return {
    ...common,
    layer: "day",
    hostname: cfg.gpu.hostname,
    placement: { instanceType: cfg.gpu.instanceType, location: cfg.gpu.location, spot: cfg.gpu.spot },
    osVolumeGb: cfg.gpu.osVolumeSizeGb,
    sfsGb: monthSfs?.sizeGb,
    // The live SFS must be at least what the month stack was asked for (a re-created or shrunk SFS fails here).
    requiredSfs: monthSfs?.id ? { id: monthSfs.id, minSizeGb: monthSfs.sizeGb ?? 1 } : undefined,
  };
}

/** Reads the month stack's SFS id and size (day stacks) from the program's month StackReference. */
async function monthSfsOf(ref: pulumi.StackReference): Promise<{ id?: string; sizeGb?: number }> {
  const [id, size] = await Promise.all([ref.getOutputDetails("sfsId"), ref.getOutputDetails("sfsSizeGb")]);
  return { id: typeof id.value === "string" ? id.value : undefined, sizeGb: typeof size.value === "number" ? size.value : undefined };
}

export interface GateResult {
  report: CostReport;
  /** The placement the preflight chose (a configured fallback when the first choice has no capacity). */
  placement?: Placement;
}

export async function moneyGate(
  cfg: MonthConfig | DayConfig,
  credentials: GateCredentials | undefined,
  deps: { api?: MoneyApi; monthSfs?: { id?: string; sizeGb?: number }; monthRef?: pulumi.StackReference; command?: string } = {},
): Promise<GateResult | undefined> {
  // `destroy --run-program` runs the program too: a gate must never stand between a stack and its teardown.
  // (The program already declares nothing on a destroy; this keeps the gate safe for any other caller.)
  if (isDestroyCommand("command" in deps ? deps.command : pulumiCommand())) {
    pulumi.log.info(`${cfg.stack}: destroy: money checks skipped`);
    return undefined;
  }
  if (!deps.api && !credentials) {
    pulumi.log.warn(`${cfg.stack}: no Verda credentials in the program: balance, capacity and budget checks skipped`);
    return undefined;
  }
  // Every read the check needs goes out now, together (beside the month's outputs below), each once.
  const api = oneRoundReads(deps.api ?? verdaForMoney(credentials!).api);
  api.sendAhead();
  const monthRef = deps.monthRef;
  const monthSfs = cfg.layer === "day" ? (deps.monthSfs ?? (monthRef ? await monthSfsOf(monthRef) : undefined)) : undefined;
  try {
    if (cfg.layer === "day" && cfg.inference === "serverless") {
      // No instance to place: the serverless compute's availability, the day's cost and the budget instead.
      const check = await guardServerlessDay(api, { stack: cfg.stack, money: cfg.money, plan: serverlessPlanOf(cfg.serverless), prices: cfg.serverless.prices, sfsGb: monthSfs?.sizeGb });
      for (const line of check.info) pulumi.log.info(line);
      for (const line of check.warnings) pulumi.log.warn(line);
      return { report: check.report };
    }
    const check = await phaseMoneyCheck(api, phaseCheckInput(cfg, monthSfs));
    for (const line of check.info) pulumi.log.info(line);
    for (const line of check.warnings) pulumi.log.warn(line);
    const choice = check.guard?.preflight.choice;
    const placement = choice ? { instanceType: choice.instanceType, location: choice.location, spot: choice.spot } : undefined;
    return { report: check.report, placement };
  } catch (e) {
    if (e instanceof PreflightError || e instanceof BudgetExceededError) throw new pulumi.RunError(e.message);
    throw e;
  }
}
