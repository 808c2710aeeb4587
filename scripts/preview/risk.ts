// Which planned changes lose data: replacing or deleting a protected resource or one that holds data
// (SFS, scratch, R2 buckets, mello). These go first in the summary, under a warning.
import { dataRoleOf, DATA_ROLE_LABELS, type DataRole } from "../../policy/resources";
import type { PlannedChange } from "./model";

export interface AtRisk {
  change: PlannedChange;
  role?: DataRole;
  /** Why it is listed, e.g. "scratch volume (user inputs and outputs)" or "protected resource". */
  why: string;
}

export function roleOf(change: PlannedChange): DataRole | undefined {
  // The old state says what is there now; the new one covers a resource whose type is only known later.
  return dataRoleOf(change.type, change.old?.inputs ?? change.new?.inputs) ?? dataRoleOf(change.type, change.new?.inputs);
}

export function atRisk(change: PlannedChange): AtRisk | undefined {
  if (change.kind !== "replace" && change.kind !== "delete") return undefined;
  const role = roleOf(change);
  if (!role && !change.protect) return undefined;
  const why = [role ? DATA_ROLE_LABELS[role] : "protected resource", ...(role && change.protect ? ["protected"] : [])].join(", ");
  return { change, role, why };
}
