// Helpers shared by the dynamic providers: preview unknowns, input comparison, polling, plain outputs.
import { waitTimeoutError } from "../verda/errors";
import { sleep } from "../verda/retry";

/** During preview the engine passes this string for every unknown input, whatever its type. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

/** The engine's protobuf Struct rejects `undefined`; JSON round-tripping drops such keys. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Keeps only the listed keys (never `__provider` or other engine-injected properties). */
export function pick<T extends object>(source: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/** Canonical text for comparing an input with its stored value: order-free lists, absent == empty. */
export function canonical(value: unknown, unorderedList = false): string {
  if (value === undefined || value === null || value === "") return "";
  if (Array.isArray(value)) {
    if (value.length === 0) return "";
    const items = value.map((v) => canonical(v));
    return JSON.stringify(unorderedList ? [...items].sort() : items);
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b));
    return entries.length === 0 ? "" : JSON.stringify(entries.map(([k, v]) => [k, canonical(v)]));
  }
  return JSON.stringify(value);
}

/** Names of the keys whose new value differs from the old one (an unknown new value counts as a change). */
export function changedKeys<T extends object>(olds: Partial<T>, news: Partial<T>, keys: readonly (keyof T)[], unordered: readonly (keyof T)[] = []): (keyof T)[] {
  return keys.filter((key) => {
    if (containsUnknown(news[key])) return true;
    const isUnordered = unordered.includes(key);
    return canonical(olds[key], isUnordered) !== canonical(news[key], isUnordered);
  });
}

export interface PollOptions {
  intervalMs: number;
  /** Longest interval (default 4x intervalMs). */
  maxIntervalMs?: number;
  timeoutMs: number;
  what: string;
}

/**
 * Polls `observe` until `done` returns true, or throws on deadline. `observe` may throw to abort.
 * The interval grows by half each round up to 4x (or maxIntervalMs), to stay well inside Verda's 60 req/min per path.
 */
export async function pollUntil<T>(observe: () => Promise<T>, done: (value: T) => boolean, describe: (value: T) => string | undefined, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let interval = options.intervalMs;
  let last: T | undefined;
  for (;;) {
    last = await observe();
    if (done(last)) return last;
    if (Date.now() + interval > deadline) break;
    await sleep(interval);
    interval = Math.min(interval * 1.5, options.maxIntervalMs ?? options.intervalMs * 4);
  }
  throw waitTimeoutError(options.what, options.timeoutMs, last === undefined ? undefined : describe(last));
}
