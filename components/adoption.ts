// What a component passes to a provider for a resource the config adopts (`<block>.adopt: { id?, name? }`),
// and the resource options every adopted resource gets. Rules: infra/providers/adopt.ts, docs/adopting.md.
import * as pulumi from "@pulumi/pulumi";
import type { AdoptInput } from "../infra/providers/adopt";

export interface AdoptRef {
  id?: string;
  name?: string;
}

/**
 * The provider's `adopt` input: the reference plus the config keys (per provider input) and the stack, so
 * each reported difference names its setting and the exact fix command.
 */
export function adoptInput(ref: AdoptRef | undefined, block: string, settings: Record<string, string>, what: string): AdoptInput | undefined {
  if (!ref || (ref.id === undefined && ref.name === undefined)) return undefined;
  const keys = Object.fromEntries(Object.entries(settings).map(([input, key]) => [input, `${block}.${key}`]));
  return { ...ref, settings: { ...keys, adopt: `${block}.adopt` }, stack: pulumi.getStack(), what };
}

/**
 * Adopted resources are protected (a destroy or a replace stops at them) and retained on delete (once
 * unprotected, a destroy forgets them and leaves them at Verda). ignoreChanges is not needed: the
 * provider never plans a replace or an update for an adopted resource, it reports the difference.
 */
export function adoptedOptions(ref: AdoptRef | undefined): pulumi.CustomResourceOptions {
  return ref ? { protect: true, retainOnDelete: true } : {};
}
