// While a day stack is up, the scratch volume holds the participants' inputs and outputs of that day;
// replacing it (or deleting it without the nightly destroy) loses them. The engine does not tell a
// policy which operation it plans, so this compares the new inputs with the stack's last state.
import { readNumber, readString, TYPES, UNKNOWN, volumeRole } from "../resources";
import type { StackViolation } from "./backup-hook";

export interface StateResource {
  urn: string;
  type: string;
  inputs: Record<string, unknown>;
}

export interface ScratchContext {
  /** The day stack whose state decides "up" (this stack on a day, `<env>-day` on a month). */
  dayStack: string;
  /** That day stack's state holds a Verda instance. */
  dayStackUp: boolean;
  /** This stack's last state. */
  previous: StateResource[];
}

const isScratch = (r: { type: string; inputs: Record<string, unknown> }) => r.type === TYPES.volume && volumeRole(r.inputs) === "scratch";

/**
 * Why the Volume provider would replace a volume going from `olds` to `news` (its diff replaces on a
 * new type or location, or on a smaller size); unknown values are not counted, like the provider.
 */
export function volumeReplaceReasons(olds: Record<string, unknown>, news: Record<string, unknown>): string[] {
  const reasons: string[] = [];
  for (const key of ["type", "locationCode"]) {
    const before = readString(olds, key) ?? (key === "type" ? "NVMe" : undefined);
    const after = readString(news, key) ?? (key === "type" ? "NVMe" : undefined);
    if (after !== UNKNOWN && before !== after) reasons.push(`${key} ${String(before)} -> ${String(after)}`);
  }
  const oldSize = readNumber(olds, "size");
  const newSize = readNumber(news, "size");
  if (typeof oldSize === "number" && typeof newSize === "number" && newSize < oldSize) reasons.push(`size shrinks ${oldSize} -> ${newSize} GB`);
  return reasons;
}

/** Resource check: this scratch volume keeps its URN but its inputs would force a replacement. */
export function scratchReplacementViolation(urn: string, type: string, props: Record<string, unknown>, ctx: ScratchContext): string | undefined {
  if (!ctx.dayStackUp || !isScratch({ type, inputs: props })) return undefined;
  const before = ctx.previous.find((r) => r.urn === urn && isScratch(r));
  if (!before) return undefined;
  const reasons = volumeReplaceReasons(before.inputs, props);
  if (reasons.length === 0) return undefined;
  return `This would replace the scratch volume while the day stack ${ctx.dayStack} is up (${reasons.join("; ")}), losing the day's inputs and outputs. Revert the change, or wait until the day is backed up and destroyed.`;
}

/** Stack check: a scratch volume of the last state is gone from the program while the day is up. */
export function removedScratchViolations(currentUrns: string[], ctx: ScratchContext): StackViolation[] {
  if (!ctx.dayStackUp) return [];
  const current = new Set(currentUrns);
  return ctx.previous
    .filter((r) => isScratch(r) && !current.has(r.urn))
    .map((r) => ({
      message: `The scratch volume ${r.urn} would be deleted (or replaced under a new name) while the day stack ${ctx.dayStack} is up, losing the day's inputs and outputs. Keep its resource name and inputs; remove it only with the nightly destroy.`,
    }));
}
