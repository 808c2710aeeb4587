// Adoption: a Verda resource that exists already (made in the console, holding months of work) is taken
// into a stack by id or name instead of being created. Pulumi's `import` option does not work with
// dynamic providers (the host cannot find the provider code without state: pulumi/pulumi#16175), so the
// provider's create looks the resource up and records it; the component adds protect + retainOnDelete.
//
// Rules for an adopted resource (enforced by the providers, whatever the resource options say):
// - at adoption, every difference between the config and the live resource fails the preview, each
//   naming the setting, both values and the exact command that makes the config match;
// - once adopted, a config edit never plans a replace or an update: the difference is reported on every
//   preview and up, and nothing at Verda changes;
// - no mutating call is ever made on it (no rename, resize, attach, detach, delete).
import { canonical, containsUnknown, type CheckFailure } from "./shared";

/** Config `adopt: { id?, name? }` plus what the component knows for the messages. */
export interface AdoptInput {
  /** The resource's Verda id (wins over name). */
  id?: string;
  /** The resource's exact name at Verda (hostname for an instance); must match exactly one live resource. */
  name?: string;
  /** Config key per provider input, e.g. `{ size: "comfyume:sfs.sizeGb" }`, for the fix commands. */
  settings?: Record<string, string>;
  /** The stack, for the fix commands. */
  stack?: string;
  /** What the config calls it, e.g. "the SFS" (messages). */
  what?: string;
}

export interface Difference {
  /** The provider input, e.g. `size`. */
  key: string;
  configured: unknown;
  live: unknown;
}

export function hasAdopt(adopt: AdoptInput | undefined): adopt is AdoptInput {
  return !!adopt && (typeof adopt.id === "string" || typeof adopt.name === "string");
}

export function describeAdopt(adopt: AdoptInput): string {
  return adopt.id ? `id ${adopt.id}` : `name '${adopt.name}'`;
}

export function validateAdopt(adopt: AdoptInput | undefined, failures: CheckFailure[]): void {
  if (adopt === undefined || containsUnknown(adopt)) return;
  const id = adopt.id;
  const name = adopt.name;
  if (id === undefined && name === undefined) {
    failures.push({ property: "adopt", reason: `adopt needs an id or a name of the existing resource; set ${adopt.settings?.adopt ?? "adopt"}.id (Verda console) or remove adopt` });
  }
  if (id !== undefined && (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/.test(id))) {
    failures.push({ property: "adopt.id", reason: `adopt.id '${String(id)}' is not a Verda id (copy it from the Verda console or the API)` });
  }
  if (name !== undefined && (typeof name !== "string" || name.trim() === "")) {
    failures.push({ property: "adopt.name", reason: "adopt.name must be the resource's exact name at Verda" });
  }
}

/** The live resource the adopt reference names: by id, or the one live resource with that exact name. */
export async function findAdopted<T extends { id: string }>(
  adopt: AdoptInput,
  kind: string,
  byId: (id: string) => Promise<T | undefined>,
  all: () => Promise<T[]>,
  nameOf: (item: T) => string | undefined,
  alive: (item: T) => boolean,
): Promise<T> {
  const what = adopt.what ?? kind;
  if (adopt.id) {
    const found = await byId(adopt.id);
    if (!found || !alive(found)) {
      throw new Error(`Cannot adopt ${what}: no ${kind} with id ${adopt.id} exists at Verda. Fix: copy the id from the Verda console into ${adoptKey(adopt)}.id, or adopt by name (${adoptKey(adopt)}.name)`);
    }
    if (adopt.name && nameOf(found) !== adopt.name) {
      throw new Error(`Cannot adopt ${what}: ${kind} ${adopt.id} is named '${nameOf(found)}', not '${adopt.name}' (${adoptKey(adopt)}.name). Fix: correct one of them; the id wins when the name is removed`);
    }
    return found;
  }
  const matches = (await all()).filter((item) => alive(item) && nameOf(item) === adopt.name);
  if (matches.length === 0) {
    throw new Error(`Cannot adopt ${what}: no ${kind} named '${adopt.name}' exists at Verda. Fix: copy the exact name (or the id, ${adoptKey(adopt)}.id) from the Verda console`);
  }
  if (matches.length > 1) {
    throw new Error(`Cannot adopt ${what}: ${matches.length} ${kind}s are named '${adopt.name}' (${matches.map((m) => m.id).join(", ")}). Fix: adopt by id: ${fixCommand(adopt, "id", matches[0].id)} (with the right one of these ids)`);
  }
  return matches[0];
}

const adoptKey = (adopt: AdoptInput) => adopt.settings?.adopt ?? "adopt";

/** The inputs whose configured value differs from the live one (unknown configured values are skipped). */
export function differences(configured: Record<string, unknown>, live: Record<string, unknown>, keys: readonly string[]): Difference[] {
  return keys
    .filter((key) => live[key] !== undefined && configured[key] !== undefined && !containsUnknown(configured[key]))
    .filter((key) => canonical(configured[key]) !== canonical(live[key]))
    .map((key) => ({ key, configured: configured[key], live: live[key] }));
}

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

function fixCommand(adopt: AdoptInput, key: string, value: unknown): string {
  const setting = key === "id" ? `${adoptKey(adopt)}.id` : (adopt.settings?.[key] ?? key);
  return `scripts/pulumi config set --path ${quote(setting)} ${quote(String(value))}${adopt.stack ? ` --stack ${adopt.stack}` : ""}`;
}

/** One actionable line per difference: the setting, both values, the fix. */
export function differenceMessage(adopt: AdoptInput, d: Difference, adopted: boolean): string {
  const setting = adopt.settings?.[d.key];
  const what = adopt.what ?? "the resource";
  const head = `${setting ?? d.key}: configured ${JSON.stringify(d.configured)}, but ${what} (${describeAdopt(adopt)}) has ${JSON.stringify(d.live)} at Verda`;
  const fix = setting
    ? `set the config to the live value: ${fixCommand(adopt, d.key, d.live)}`
    : `adopt a resource that has ${JSON.stringify(d.configured)} (${adoptKey(adopt)}), or change it in the Verda console`;
  return adopted
    ? `${head}. It is adopted: the stack never changes or replaces it, so this edit is not applied. Fix: ${fix}; change the resource itself in the Verda console if you meant to`
    : `${head}. Adopting takes it as it is and changes nothing. Fix: ${fix}`;
}

export function adoptionFailures(adopt: AdoptInput, diffs: Difference[]): CheckFailure[] {
  return diffs.map((d) => ({ property: d.key, reason: differenceMessage(adopt, d, false) }));
}

/**
 * The dynamic-provider host has no pulumi.log: its stderr reaches the CLI output, so these lines show in
 * preview and up.
 */
export function reportAdoptedDifferences(adopt: AdoptInput, diffs: Difference[]): void {
  for (const d of diffs) console.error(`warning: adopted: ${differenceMessage(adopt, d, true)}`);
}
