// Policy configuration (`--policy-pack-config <file>`) and its defaults.
import type { Phase } from "./phase";

export interface InstanceTypeConfig {
  /** Instance types each phase may run. Types not listed for a phase are refused. */
  allowedInstanceTypes: Partial<Record<Phase, string[]>>;
}

/**
 * Defaults: no instance while idle; a small CPU loader during the month phases (seeding the SFS);
 * cheap GPUs (and CPU) on testing days; the workshop's GPUs on workshop days.
 */
export const DEFAULT_ALLOWED_INSTANCE_TYPES: Record<Phase, string[]> = {
  idle: [],
  "testing-month": ["CPU.4V.16G", "CPU.8V.32G"],
  "workshop-month": ["CPU.4V.16G", "CPU.8V.32G"],
  "testing-day": ["CPU.4V.16G", "CPU.8V.32G", "1RTX6000ADA.10V", "1A100.40S.22V", "1A100.22V"],
  "workshop-day": ["1RTX6000ADA.10V", "1A100.40S.22V", "1A100.22V", "1H100.80S.22V", "1H100.80S.32V"],
};

/** Phases the config lists replace the defaults for those phases only. */
export function allowedInstanceTypes(config: Partial<InstanceTypeConfig> | undefined, phase: Phase): string[] {
  return config?.allowedInstanceTypes?.[phase] ?? DEFAULT_ALLOWED_INSTANCE_TYPES[phase];
}

/** JSON schema shown by `pulumi policy` tooling and used to validate the config file. */
export const instanceTypeConfigSchema = {
  properties: {
    allowedInstanceTypes: {
      type: "object",
      description: "Per phase (idle, testing-month, workshop-month, testing-day, workshop-day): the Verda instance types allowed.",
      additionalProperties: { type: "array", items: { type: "string" } },
    },
  },
} as const;
