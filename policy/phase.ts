// The phase a stack runs. The policy pack is not told the stack's config (`comfyume:phase`), but
// every URN names the stack, and the program only runs a stack whose name names its phase
// (infra/config/phase.ts stackMatchesPhase), so the stack name is a faithful source.
import { environmentOf, layerOf, parsePhase, phaseOfStackName, PHASES, type Environment, type Layer, type Phase } from "../infra/config/phase";
import { parseUrn } from "./resources";

export { environmentOf, layerOf, parsePhase, PHASES, type Environment, type Layer, type Phase };

/**
 * The phase named by a stack (`workshop-day`, `rehearsal-workshop-day`, `workshop-day-2`, `prod-day`), if any.
 * `known`: environments besides testing/workshop whose prefixed stacks (`rehearsal-prod-day`) resolve to them.
 */
export function phaseOfStack(stack: string, known: readonly Environment[] = []): Phase | undefined {
  return phaseOfStackName(stack, known);
}

export function stackOfUrn(urn: string): string | undefined {
  return parseUrn(urn)?.stack;
}

export function phaseOfUrn(urn: string, known: readonly Environment[] = []): Phase | undefined {
  const stack = stackOfUrn(urn);
  return stack === undefined ? undefined : phaseOfStack(stack, known);
}

export const isDayPhase = (phase: Phase | undefined): boolean => phase !== undefined && layerOf(phase) === "day";

/**
 * The day stack that layers on this stack: the stack itself for a day phase, the same name with
 * `-month` turned into `-day` for a month phase (`workshop-month` -> `workshop-day`), none for idle.
 */
export function dayStackFor(stack: string, phase: Phase): string | undefined {
  const layer = layerOf(phase);
  if (layer === "day") return stack;
  if (layer === "idle") return undefined;
  const dayPhase = phase.replace(/-month$/, "-day");
  return stack.replace(phase, dayPhase);
}
