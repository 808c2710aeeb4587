// The deployment phases. Each phase is one Pulumi stack; the layers build on each other:
// idle (always up) -> <env>-month (the SFS) -> <env>-day (the worker instance).

export const PHASES = ["idle", "testing-month", "workshop-month", "testing-day", "workshop-day"] as const;
export type Phase = (typeof PHASES)[number];
export type Layer = "idle" | "month" | "day";
export type Environment = "testing" | "workshop";

export function isPhase(value: unknown): value is Phase {
  return typeof value === "string" && (PHASES as readonly string[]).includes(value);
}

export function layerOf(phase: Phase): Layer {
  if (phase === "idle") return "idle";
  return phase.endsWith("-month") ? "month" : "day";
}

/** `testing` or `workshop` for month/day phases; undefined for idle. */
export function environmentOf(phase: Phase): Environment | undefined {
  if (phase === "idle") return undefined;
  return phase.startsWith("testing-") ? "testing" : "workshop";
}

/** The month phase a day phase layers on. */
export function monthPhaseFor(phase: Phase): Phase | undefined {
  const env = environmentOf(phase);
  return env && layerOf(phase) === "day" ? (`${env}-month` as Phase) : undefined;
}

/**
 * A stack runs the phase of its name: `workshop-day`, or a prefixed/suffixed variant such as
 * `rehearsal-workshop-day` or `workshop-day-2`. Guards against `up` of the wrong layer.
 */
export function stackMatchesPhase(stack: string, phase: Phase): boolean {
  return stack === phase || stack.endsWith(`-${phase}`) || stack.startsWith(`${phase}-`);
}
