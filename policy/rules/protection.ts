// The SFS holds a month of models and caches; the R2 buckets hold the backups. Pulumi must refuse
// to delete or replace either, which it does only for protected resources.
import { dataRoleOf, DATA_ROLE_LABELS } from "../resources";

export function protectionViolation(type: string, props: Record<string, unknown> | undefined, protect: boolean): string | undefined {
  const role = dataRoleOf(type, props);
  if ((role !== "sfs" && role !== "r2-bucket") || protect) return undefined;
  return `The ${DATA_ROLE_LABELS[role]} is not protected. Declare it with { protect: true } so that no preview, up or destroy can delete or replace it; unprotect it deliberately (pulumi state unprotect) when it must really go.`;
}
