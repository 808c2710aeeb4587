// Pure input checks shared by the providers' check(); each failure names the property and the fix.
import type { VerdaClient } from "../verda/client";
import { verdaRuntime } from "./runtime";
import { type CheckFailure, UNKNOWN } from "./shared";

const isKnown = (value: unknown): boolean => value !== UNKNOWN;

export function requireText(property: string, value: unknown, failures: CheckFailure[]): void {
  if (!isKnown(value)) return;
  if (typeof value !== "string" || value.trim() === "") {
    failures.push({ property, reason: `${property} is required: give a non-empty string` });
  }
}

export function requirePositiveSize(property: string, value: unknown, failures: CheckFailure[]): void {
  if (!isKnown(value)) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    failures.push({ property, reason: `${property} must be a whole number of GB greater than 0 (got ${JSON.stringify(value)})` });
  }
}

/** Verda's rule as enforced by its CLI: letters, digits and '-', no '-' at either end, at least one letter. */
export function hostnameProblem(hostname: string): string | undefined {
  if (hostname.length === 0) return "must not be empty";
  if (hostname.length > 63) return "must be at most 63 characters";
  if (!/^[A-Za-z0-9-]+$/.test(hostname)) return "may only contain letters, digits and '-'";
  if (hostname.startsWith("-") || hostname.endsWith("-")) return "must not start or end with '-'";
  if (!/[A-Za-z]/.test(hostname)) return "must contain at least one letter";
  return undefined;
}

export function checkHostname(property: string, value: unknown, failures: CheckFailure[]): void {
  if (!isKnown(value)) return;
  const problem = typeof value === "string" ? hostnameProblem(value) : "must be a string";
  if (problem) {
    failures.push({ property, reason: `${property} ${JSON.stringify(value)} ${problem}; use e.g. "workshop-gpu-1"` });
  }
}

export function checkOneOf(property: string, value: unknown, allowed: readonly string[], failures: CheckFailure[]): void {
  if (value === undefined || !isKnown(value)) return;
  if (typeof value !== "string" || !allowed.includes(value)) {
    failures.push({ property, reason: `${property} ${JSON.stringify(value)} is not one of ${allowed.join(", ")}` });
  }
}

/** Verda allows at most 10 tags; keys up to 63 characters, values up to 127. */
export function checkTags(property: string, tags: unknown, failures: CheckFailure[]): void {
  if (tags === undefined || !isKnown(tags)) return;
  if (!tags || typeof tags !== "object" || Array.isArray(tags)) {
    failures.push({ property, reason: `${property} must be a map of key to value` });
    return;
  }
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 10) failures.push({ property, reason: `${property} has ${entries.length} entries; Verda allows at most 10` });
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 63) failures.push({ property, reason: `${property} key ${JSON.stringify(key)} must be 1-63 characters` });
    if (isKnown(value) && (typeof value !== "string" || value.length > 127)) {
      failures.push({ property, reason: `${property}.${key} must be a string of at most 127 characters ("" for a freeform tag)` });
    }
  }
}

/** Catalogue lists change rarely: cache them per process and base URL for five minutes. */
async function cachedList(client: VerdaClient, kind: "types" | "locations"): Promise<string[]> {
  const runtime = verdaRuntime();
  const cache = (runtime.catalogue ??= {});
  const key = `${client.baseUrl}|${kind}`;
  const hit = cache[key];
  if (hit && Date.now() - hit.at < 5 * 60_000) return hit.values;
  const values = kind === "types" ? (await client.listInstanceTypes()).map((t) => t.instance_type) : (await client.listLocations()).map((l) => l.code);
  cache[key] = { at: Date.now(), values };
  return values;
}

/** Looks up instance types and locations in Verda's catalogue (read-only calls). Unreachable catalogue => no failures. */
export async function catalogueFailures(client: VerdaClient, wanted: { instanceType?: unknown; locationCode?: unknown; locationProperty?: string }): Promise<CheckFailure[]> {
  const failures: CheckFailure[] = [];
  try {
    if (typeof wanted.instanceType === "string" && isKnown(wanted.instanceType)) {
      const types = await cachedList(client, "types");
      if (types.length > 0 && !types.includes(wanted.instanceType)) {
        failures.push({
          property: "instanceType",
          reason: `instanceType ${JSON.stringify(wanted.instanceType)} is not in Verda's catalogue; pick one of ${types.slice(0, 12).join(", ")}${types.length > 12 ? ", ..." : ""}`,
        });
      }
    }
    if (typeof wanted.locationCode === "string" && isKnown(wanted.locationCode)) {
      const codes = await cachedList(client, "locations");
      if (codes.length > 0 && !codes.includes(wanted.locationCode)) {
        const property = wanted.locationProperty ?? "locationCode";
        failures.push({ property, reason: `${property} ${JSON.stringify(wanted.locationCode)} is not a Verda location; use one of ${codes.join(", ")}` });
      }
    }
  } catch {
    // A catalogue outage must not block previews; create would then fail with Verda's own error.
  }
  return failures;
}
