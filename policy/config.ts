// Policy configuration (`--policy-pack-config <file>`) and its defaults.
import { environmentOf, layerOf, parsePhase, type Environment, type Layer, type Phase } from "./phase";

export interface InstanceTypeConfig {
  /**
   * Instance types allowed per layer (`idle`, `month`, `day`: every environment) and per phase
   * (`<env>-month`, `<env>-day`: that environment only, in place of its layer's list).
   */
  allowedInstanceTypes: Partial<Record<Layer | Phase, string[]>>;
}

const CPU = ["CPU.4V.16G", "CPU.8V.32G"];
const TESTING_GPUS = ["1RTX6000ADA.10V", "1A100.40S.22V", "1A100.22V"];
const WORKSHOP_GPUS = ["1RTX6000ADA.10V", "1A100.40S.22V", "1A100.22V", "1H100.80S.22V", "1H100.80S.32V"];

/**
 * Defaults of the built-in environments: no instance while idle; a small CPU loader during the month
 * phases (seeding the SFS); cheap GPUs (and CPU) on testing days; the workshop's GPUs on workshop days.
 */
export const DEFAULT_ALLOWED_INSTANCE_TYPES: Record<"idle" | "testing-month" | "workshop-month" | "testing-day" | "workshop-day", string[]> = {
  idle: [],
  "testing-month": CPU,
  "workshop-month": CPU,
  "testing-day": [...CPU, ...TESTING_GPUS],
  "workshop-day": WORKSHOP_GPUS,
};

/** Defaults of any other environment (`prod`, `staging`, ...): CPU only in a month stack, CPU or GPU on a day. */
export const DEFAULT_ALLOWED_BY_LAYER: Record<Layer, string[]> = {
  idle: [],
  month: CPU,
  day: [...CPU, ...WORKSHOP_GPUS],
};

/**
 * The list for a phase, most specific first: the config's `<env>-<layer>`, the config's `<layer>`, the
 * built-in environment's default, the layer's default.
 */
export function allowedInstanceTypes(config: Partial<InstanceTypeConfig> | undefined, phase: Phase): string[] {
  const listed = config?.allowedInstanceTypes ?? {};
  const layer = layerOf(phase);
  return listed[phase] ?? listed[layer] ?? (DEFAULT_ALLOWED_INSTANCE_TYPES as Record<string, string[]>)[phase] ?? DEFAULT_ALLOWED_BY_LAYER[layer];
}

/** Environments the config names (`prod` of `prod-day`): stacks such as `rehearsal-prod-day` resolve to them. */
export function environmentsNamedIn(config: Partial<InstanceTypeConfig> | undefined): Environment[] {
  return Object.keys(config?.allowedInstanceTypes ?? {})
    .filter((key) => key !== "idle" && parsePhase(key) !== undefined)
    .map((key) => environmentOf(key as Phase)!);
}

/** JSON schema shown by `pulumi policy` tooling and used to validate the config file. */
export const instanceTypeConfigSchema = {
  properties: {
    allowedInstanceTypes: {
      type: "object",
      description:
        "The Verda instance types allowed, per layer (idle, month, day: every environment) or per phase (<env>-month, <env>-day: " +
        "that environment, e.g. prod-day or testing-month). The phase's list wins over its layer's.",
      additionalProperties: { type: "array", items: { type: "string" } },
    },
  },
} as const;
