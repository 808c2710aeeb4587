// After a verified rescue backup: which resources leave the day stack's state so that
// `pulumi destroy` can finish without the gone host, and the edit itself. Chosen over
// `pulumi state delete --target-dependents`, which would also drop mello's backup hook and the
// scratch volume (they depend on the instance) and so skip mello's backup and leave the scratch
// billing outside any state.
import {
  INSTANCE_GUARD_TYPE, INSTANCE_HOOK_SUFFIX, REMOTE_COMMAND_TYPE, findInstance, nameOf, referencesOf,
  resourcesOf, type StackExport, type StateResource,
} from "./state";

export interface Removal {
  urn: string;
  type: string;
  why: string;
}

function values(r: StateResource): Record<string, unknown> {
  return { ...(r.inputs ?? {}), ...(r.outputs ?? {}) };
}

function hostOf(r: StateResource): string | undefined {
  const c = values(r).connection as Record<string, unknown> | undefined;
  return c && typeof c.host === "string" ? c.host : undefined;
}

function hasDeleteCommand(r: StateResource): boolean {
  const d = values(r).delete;
  return typeof d === "string" && d.trim() !== "";
}

/**
 * What must go (secrets revealed in `exp`): the gone instance; its InstanceGuard(s); the
 * instance-side backup hook; and every other command whose `delete` would SSH to the gone host.
 * Uploaded files (their delete does nothing), create-only commands, mello's hook and the scratch
 * volume stay: their deletes work without the host, and the scratch goes only with the destroy.
 */
export function planRemovals(exp: StackExport, stack: string): Removal[] {
  const resources = resourcesOf(exp);
  const instance = findInstance(resources, stack);
  const instanceId = String(values(instance).instanceId ?? instance.id ?? "");
  const removals: Removal[] = [{ urn: instance.urn, type: instance.type, why: `the instance ${instanceId} is gone at Verda` }];
  const hooks = resources.filter((r) => r.type === REMOTE_COMMAND_TYPE && nameOf(r.urn).endsWith(INSTANCE_HOOK_SUFFIX) && !nameOf(r.urn).endsWith("-backup-mello-before-delete"));
  const goneHosts = new Set<string>();
  const ip = values(instance).ip;
  if (typeof ip === "string" && ip) goneHosts.add(ip);
  for (const h of hooks) {
    const host = hostOf(h);
    if (host) goneHosts.add(host);
  }
  for (const r of resources) {
    if (r.urn === instance.urn) continue;
    // findInstance proved the stack has exactly one instance: every guard in it guards that one.
    if (r.type === INSTANCE_GUARD_TYPE) {
      removals.push({ urn: r.urn, type: r.type, why: "its delete refuses while the instance is gone" });
    } else if (hooks.includes(r)) {
      removals.push({ urn: r.urn, type: r.type, why: "its delete backs up on the gone host; the rescue did that backup" });
    } else if (r.type === REMOTE_COMMAND_TYPE && hasDeleteCommand(r) && goneHosts.has(hostOf(r) ?? "")) {
      removals.push({ urn: r.urn, type: r.type, why: `its delete command runs on the gone host ${hostOf(r)}` });
    }
  }
  return removals;
}

/**
 * The export without the removed resources, and with every reference to them dropped from the
 * others (dependencies, propertyDependencies, deletedWith, replaceWith). Works on the ENCRYPTED
 * export (secrets stay ciphertext). Throws when a removed URN is still referenced or is a parent.
 */
export function removeResources(exp: StackExport, urns: string[]): StackExport {
  const gone = new Set(urns);
  const kept: StateResource[] = [];
  const present = new Set(resourcesOf(exp).map((r) => r.urn));
  const absent = urns.filter((u) => !present.has(u));
  if (absent.length) throw new Error(`the state changed since it was read: ${absent.join(", ")} no longer in it; run the rescue again`);
  for (const original of resourcesOf(exp)) {
    if (gone.has(original.urn)) continue;
    const r: StateResource = structuredClone(original);
    if (r.parent && gone.has(r.parent)) throw new Error(`${r.urn} is a child of removed ${r.parent}; edit the state by hand`);
    if (r.dependencies) r.dependencies = r.dependencies.filter((u) => !gone.has(u));
    if (r.propertyDependencies) {
      for (const [k, list] of Object.entries(r.propertyDependencies)) r.propertyDependencies[k] = (list ?? []).filter((u) => !gone.has(u));
    }
    if (r.deletedWith && gone.has(r.deletedWith)) delete r.deletedWith;
    if (Array.isArray(r.replaceWith)) r.replaceWith = (r.replaceWith as string[]).filter((u) => !gone.has(u));
    const still = [...referencesOf(r)].filter((u) => gone.has(u));
    if (still.length) throw new Error(`${r.urn} still refers to ${still.join(", ")}; edit the state by hand`);
    kept.push(r);
  }
  const pending = (exp.deployment.pending_operations ?? []) as { resource?: { urn?: string } }[];
  const pendingOnGone = pending.filter((p) => p.resource?.urn && gone.has(p.resource.urn));
  return {
    ...exp,
    deployment: { ...exp.deployment, resources: kept, ...(pending.length ? { pending_operations: pending.filter((p) => !pendingOnGone.includes(p)) } : {}) },
  };
}
