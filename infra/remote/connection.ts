// The SSH connection shared by RemoteCommand and RemoteFiles: types, defaults and check()-time validation.
// A subset of @pulumi/command's remote.ConnectionArgs (same field names and defaults).
import type * as pulumi from "@pulumi/pulumi";
import { parseAuthorizedKey } from "./hostkey";

export interface SshConnection {
  host: string;
  /** Default 22. */
  port?: number;
  /** Default "root" (as in @pulumi/command). */
  user?: string;
  /** OpenSSH/PEM private key text. Pass it as `pulumi.secret(...)`. */
  privateKey?: string;
  /** authorized_keys-format public host key ("ssh-ed25519 AAAA..."); when set, any other key is refused. */
  hostKey?: string;
  /** Dial attempts before giving up (default 10; -1 = unlimited). */
  dialErrorLimit?: number;
  /** Seconds allowed for TCP connect + SSH handshake + auth per attempt (default 15; 0 = no limit). */
  perDialTimeout?: number;
}

export type ConnectionArgs = { [K in keyof SshConnection]: pulumi.Input<SshConnection[K]> };

export const CONNECTION_KEYS = [
  "host", "port", "user", "privateKey", "hostKey", "dialErrorLimit", "perDialTimeout",
] as const satisfies readonly (keyof SshConnection)[];

export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const DEFAULT_DIAL_ERROR_LIMIT = 10;
export const DEFAULT_PER_DIAL_TIMEOUT_SECONDS = 15;

/** During preview, unknown inputs reach check/diff as this string, whatever their type (pulumi/pulumi#6310). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

/** Validates what is known; unknown (preview) values are skipped. Reasons never quote key material. */
export function connectionFailures(connection: unknown, property = "connection"): CheckFailure[] {
  if (connection === UNKNOWN) return [];
  if (connection === null || typeof connection !== "object" || Array.isArray(connection)) {
    return [{ property, reason: "connection must be an object with at least `host`" }];
  }
  const failures: CheckFailure[] = [];
  const fail = (key: string, reason: string) => failures.push({ property: `${property}.${key}`, reason });
  const fields = connection as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(CONNECTION_KEYS as readonly string[]).includes(key) && fields[key] !== undefined) {
      fail(key, `not supported by this provider (supported: ${CONNECTION_KEYS.join(", ")})`);
    }
  }
  const known = (key: string) => fields[key] !== undefined && fields[key] !== UNKNOWN;
  if (fields.host === undefined || (known("host") && (typeof fields.host !== "string" || fields.host.trim() === ""))) {
    fail("host", "a non-empty host name or address is required");
  }
  if (known("port") && !isIntegerIn(fields.port, 1, 65535)) fail("port", "must be an integer from 1 to 65535");
  if (known("user") && (typeof fields.user !== "string" || fields.user === "")) fail("user", "must be a non-empty string");
  if (known("dialErrorLimit") && !(isIntegerIn(fields.dialErrorLimit, 1, 1000) || fields.dialErrorLimit === -1)) {
    fail("dialErrorLimit", "must be an integer from 1 to 1000, or -1 for unlimited");
  }
  if (known("perDialTimeout") && !isIntegerIn(fields.perDialTimeout, 0, 3600)) {
    fail("perDialTimeout", "must be a whole number of seconds from 0 (no limit) to 3600");
  }
  if (known("hostKey")) {
    const parsed = typeof fields.hostKey === "string" ? parseAuthorizedKey(fields.hostKey) : "must be a string";
    if (typeof parsed === "string") fail("hostKey", parsed);
  }
  if (known("privateKey")) {
    const problem = privateKeyProblem(fields.privateKey);
    if (problem) fail("privateKey", problem);
  }
  return failures;
}

function privateKeyProblem(privateKey: unknown): string | undefined {
  if (typeof privateKey !== "string" || privateKey.trim() === "") return "must be a non-empty string";
  const { utils } = require("ssh2") as typeof import("ssh2");
  const parsed = utils.parseKey(privateKey);
  // ssh2's messages name the format problem only ("Unsupported key format"), never the key.
  if (parsed instanceof Error) return `cannot be parsed: ${parsed.message}`;
  if (!parsed.isPrivateKey()) return "is not a private key";
  return undefined;
}

function isIntegerIn(value: unknown, min: number, max: number): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

/** "user@host:port" for messages: never includes key material. */
export function describeTarget(connection: SshConnection): string {
  return `${connection.user ?? DEFAULT_USER}@${connection.host}:${connection.port ?? DEFAULT_PORT}`;
}

/** JSON with sorted keys and undefined fields dropped, so equal values compare equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== "object" || Array.isArray(inner)) return inner;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(inner).sort()) sorted[key] = (inner as Record<string, unknown>)[key];
    return sorted;
  }) ?? "undefined";
}

/** Keys whose values differ between old state and new inputs; unknown new values count as changed. */
export function changedKeys<K extends string>(keys: readonly K[], olds: Partial<Record<K, unknown>>, news: Partial<Record<K, unknown>>): K[] {
  return keys.filter((key) => containsUnknown(news[key]) || canonicalJson(olds[key]) !== canonicalJson(news[key]));
}
