// A day's instance holds the day's work until backup-to-r2 has copied it: its deletion must wait for
// a remote command whose `delete` runs backup-to-r2. Pulumi deletes dependents first, so that command
// must depend on the instance.
import { isInstance, isRemoteCommand, readProp, UNKNOWN } from "../resources";

export interface StackResource {
  urn: string;
  type: string;
  props: Record<string, unknown>;
  /** URNs this resource depends on. */
  dependencies: string[];
}

export interface StackViolation {
  urn?: string;
  message: string;
}

const BACKUP_COMMAND = /\bbackup-to-r2\b/;

/** Whether `resource` is a backup-before-delete hook for `instanceUrn` (an unknown `delete` counts until known). */
export function isBackupHookFor(resource: StackResource, instanceUrn: string): boolean {
  if (!isRemoteCommand(resource.type) || !resource.dependencies.includes(instanceUrn)) return false;
  const del = readProp(resource.props, "delete");
  return del === UNKNOWN || (typeof del === "string" && BACKUP_COMMAND.test(del));
}

export function missingBackupHooks(resources: StackResource[]): StackViolation[] {
  return resources
    .filter((r) => isInstance(r.type))
    .filter((instance) => !resources.some((r) => isBackupHookFor(r, instance.urn)))
    .map((instance) => ({
      urn: instance.urn,
      message:
        "This day-stack instance has no backup-before-delete hook: add a remote:Command that depends on the instance and whose `delete` runs backup-to-r2, so that destroying the day backs up the work first.",
    }));
}
