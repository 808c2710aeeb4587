// idle keeps only mello, the buckets and SSH keys: a Verda instance there bills by the hour for nothing.
import { isInstance } from "../resources";
import type { Phase } from "../phase";

export function idleInstanceViolation(type: string, phase: Phase): string | undefined {
  if (phase !== "idle" || !isInstance(type)) return undefined;
  return "A Verda instance is declared in the idle phase. idle holds only mello, the R2 buckets and SSH keys; run GPU work in a day stack (<env>-day, e.g. testing-day or workshop-day).";
}
