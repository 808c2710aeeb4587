// From `comfyume:*` config values (full key -> value) to the cost model's plan, with the same
// defaults as infra/config (its zod schemas are reused, so a default changes in one place).
import type { z } from "zod";
import { buildSchemas } from "../config/schema";
import { isPhase, layerOf, environmentOf, phaseOfStackName, type Environment, type Phase } from "../config/phase";
import { parseMoneySettings, type MoneySettings } from "./settings";
import type { PhasePlan } from "./model";
import { serverlessPlanOf } from "../phases/serverless";
import type { Layer } from "./types";

export type ConfigValues = Record<string, unknown>;

const get = (values: ConfigValues | undefined, key: string) => values?.[`comfyume:${key}`];

type Schemas = ReturnType<typeof buildSchemas>;

function parsed<K extends "gpu" | "sfs" | "scratch" | "verda" | "serverless">(key: K, values: ConfigValues | undefined): z.output<Schemas[K]> {
  const schema = buildSchemas()[key] as unknown as z.ZodType<z.output<Schemas[K]>>;
  const result = schema.safeParse(get(values, key) ?? {});
  if (!result.success) throw new Error(`comfyume:${key}: ${result.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`);
  return result.data;
}

export function phaseOf(stack: string, values: ConfigValues | undefined): Phase {
  const declared = get(values, "phase");
  if (isPhase(declared)) return declared;
  const guess = phaseOfStackName(stack);
  if (!guess) throw new Error(`stack ${stack}: comfyume:phase is not set and the name names no phase`);
  return guess;
}

export function moneySettingsOf(values: ConfigValues | undefined): MoneySettings {
  return parseMoneySettings({ budget: get(values, "budget"), forecast: get(values, "forecast"), capacity: get(values, "capacity"), watchdog: get(values, "watchdog") });
}

/** The environment's plan from the day and month stacks' config (either may be missing). */
export function planFromConfigs(configs: { day?: ConfigValues; month?: ConfigValues }): PhasePlan {
  const plan: PhasePlan = {};
  const dayVerda = parsed("verda", configs.day);
  if (configs.day && get(configs.day, "inference") === "serverless") {
    // No instance and no scratch on a serverless day: the deployments' minimum replicas (docs/money.md).
    const serverless = parsed("serverless", configs.day);
    const declared = get(configs.day, "phase");
    const env = (isPhase(declared) ? environmentOf(declared) : undefined) ?? "workshop";
    plan.serverless = serverlessPlanOf({ ...serverless, namePrefix: serverless.namePrefix ?? `comfyume-${env}-worker` });
    plan.sfsGb = parsed("sfs", configs.month).sizeGb;
    return plan;
  }
  if (configs.day) {
    const gpu = parsed("gpu", configs.day);
    plan.instance = { instanceType: gpu.instanceType ?? "CPU.4V.16G", location: gpu.location ?? dayVerda.location, spot: gpu.spot, osVolumeGb: gpu.osVolumeSizeGb };
  }
  // Sizes follow infra/config's defaults when the month stack's config is not at hand.
  plan.sfsGb = parsed("sfs", configs.month).sizeGb;
  const scratch = parsed("scratch", configs.day ?? configs.month);
  plan.scratch = { sizeGb: scratch.sizeGb, lifetime: scratch.lifetime, deletePermanently: scratch.deletePermanently };
  return plan;
}

export function layerAndEnvironment(phase: Phase): { layer: Layer; environment?: Environment } {
  return { layer: layerOf(phase), environment: environmentOf(phase) };
}

/** comfyume:serverless.prices of the day stack (they win over the catalogue's serverless prices). */
export function serverlessPricesOf(values: ConfigValues | undefined): Record<string, { onDemand: number; spot: number }> | undefined {
  return get(values, "inference") === "serverless" ? parsed("serverless", values).prices : undefined;
}
