// Each phase runs only the instance types it was budgeted for.
import { isInstance, readString, UNKNOWN } from "../resources";
import type { Phase } from "../phase";

export function instanceTypeViolation(type: string, props: Record<string, unknown> | undefined, phase: Phase, allowed: string[]): string | undefined {
  if (!isInstance(type)) return undefined;
  const instanceType = readString(props, "instanceType");
  if (instanceType === UNKNOWN) return undefined; // checked again when known (up)
  if (instanceType !== undefined && allowed.includes(instanceType)) return undefined;
  const list = allowed.length ? allowed.join(", ") : "none";
  return `Instance type ${instanceType ?? "(none)"} is not allowed in ${phase} (allowed: ${list}). Pick an allowed type, or extend allowedInstanceTypes.${phase} in the policy config (--policy-pack-config).`;
}
