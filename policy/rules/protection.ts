// The SFS holds a month of models and caches; the R2 buckets hold the backups; a month-scoped scratch
// holds the users' inputs and outputs of every day so far. Pulumi must refuse to delete or replace
// any of them, which it does only for protected resources.
import type { Layer } from "../phase";
import { dataRoleOf, DATA_ROLE_LABELS } from "../resources";

/**
 * A violation when a data resource is not protected: the SFS and the buckets in every layer, a block
 * (scratch) volume in a month stack (there it lives for the month; a day stack's own scratch is
 * deleted every night, after its verified backup).
 */
export function protectionViolation(type: string, props: Record<string, unknown> | undefined, protect: boolean, layer?: Layer): string | undefined {
  const role = dataRoleOf(type, props);
  const guarded = role === "sfs" || role === "r2-bucket" || (role === "scratch" && layer === "month");
  if (!role || !guarded || protect) return undefined;
  const label = role === "scratch" ? `month's ${DATA_ROLE_LABELS[role]}` : DATA_ROLE_LABELS[role];
  return `The ${label} is not protected. Declare it with { protect: true } so that no preview, up or destroy can delete or replace it; unprotect it deliberately (pulumi state unprotect) when it must really go.`;
}
