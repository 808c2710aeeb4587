// The simulator's state: resources, clock, billing, tokens, faults, rate limits and timers.
// Domain logic lives in instances.ts, volumes.ts and keys.ts; this file only holds and resets.
import { createHash } from "node:crypto";
import { TokenStore } from "./auth";
import { Billing } from "./billing";
import { SimClock } from "./clock";
import { FaultSet, type FaultRule } from "./faults";
import { DOCUMENTED_RATE_LIMITS, RateLimiter } from "./ratelimit";
import type {
  Exchange,
  InstanceRecord,
  ScriptRecord,
  SimulatorOptions,
  SshKeyRecord,
  Tag,
  TagInput,
  Timing,
  VolumeRecord,
} from "./types";
import type { DeploymentRecord } from "./deployments";
import { fail } from "./http";
import type { FileSecretRecord, RegistryCredentialsRecord, SecretRecord } from "./secrets";

export const DEFAULT_TIMING: Timing = {
  orderedMs: 100,
  provisioningMs: 200,
  instanceActionMs: 50,
  instanceDeleteMs: 50,
  volumeCreateMs: 50,
  volumeAttachMs: 50,
  trashRetentionSimMs: 96 * 3_600_000,
  replicaColdStartMs: 300,
};

const MAX_EXCHANGES = 20_000;

export type ResolvedOptions = Required<
  Omit<SimulatorOptions, "onInstanceRunning" | "ipAllocator" | "log" | "capacity" | "startTime" | "timing" | "rateLimits" | "faults">
> & {
  timing: Timing;
  capacity: Record<string, string[]> | null;
  onInstanceRunning: SimulatorOptions["onInstanceRunning"];
  ipAllocator: SimulatorOptions["ipAllocator"];
  log: (line: string) => void;
  startTime: string | number | undefined;
  initialFaults: FaultRule[];
  rateLimits: typeof DOCUMENTED_RATE_LIMITS | null;
};

export function resolveOptions(opts: SimulatorOptions = {}): ResolvedOptions {
  const rl = opts.rateLimits;
  return {
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    clientId: opts.clientId ?? "sim-client-id",
    clientSecret: opts.clientSecret ?? "sim-client-secret",
    tokenTtlMs: opts.tokenTtlMs ?? 3_600_000,
    refreshTokenTtlMs: opts.refreshTokenTtlMs ?? 24 * 3_600_000,
    timing: { ...DEFAULT_TIMING, ...opts.timing },
    speed: opts.speed ?? 1,
    startTime: opts.startTime,
    balance: opts.balance ?? 1000,
    currency: opts.currency ?? "usd",
    rateLimits: rl === undefined || rl === false ? null : { ...DOCUMENTED_RATE_LIMITS, ...(rl === true ? {} : rl) },
    initialFaults: opts.faults ?? [],
    osVolumeOnImplicitDelete: opts.osVolumeOnImplicitDelete ?? "keep",
    ipAssignedAt: opts.ipAssignedAt ?? "provisioning",
    createIdFormat: opts.createIdFormat ?? "bare",
    trashBills: opts.trashBills ?? true,
    discontinueAtZeroBalance: opts.discontinueAtZeroBalance ?? false,
    capacity: opts.capacity ?? null,
    onInstanceRunning: opts.onInstanceRunning,
    ipAllocator: opts.ipAllocator,
    recordExchanges: opts.recordExchanges ?? true,
    log: opts.log ?? (() => undefined),
  };
}

export class Sim {
  readonly clock: SimClock;
  readonly tokens: TokenStore;
  readonly faults = new FaultSet();
  readonly limiter: RateLimiter | null;
  billing!: Billing;
  instances = new Map<string, InstanceRecord>();
  volumes = new Map<string, VolumeRecord>();
  sshKeys = new Map<string, SshKeyRecord>();
  scripts = new Map<string, ScriptRecord>();
  deployments = new Map<string, DeploymentRecord>();
  secrets = new Map<string, SecretRecord>();
  fileSecrets = new Map<string, FileSecretRecord>();
  registryCredentials = new Map<string, RegistryCredentialsRecord>();
  exchanges: Exchange[] = [];
  requestCount = 0;
  private timers = new Set<NodeJS.Timeout>();
  private ipCounter = 10;
  scriptSeq = 0;

  constructor(readonly opts: ResolvedOptions) {
    this.clock = new SimClock(opts.speed, opts.startTime);
    this.tokens = new TokenStore(opts.clientId, opts.clientSecret, opts.tokenTtlMs, opts.refreshTokenTtlMs);
    this.limiter = opts.rateLimits ? new RateLimiter(opts.rateLimits) : null;
    this.resetResources();
  }

  /** Runs `fn` after `ms` real milliseconds unless the simulator is reset or closed first. */
  schedule(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      try {
        fn();
      } catch (err) {
        this.opts.log(`simulator timer failed: ${String(err)}`);
      }
    }, ms);
    this.timers.add(timer);
  }

  cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private resetResources(): void {
    this.cancelTimers();
    this.instances.clear();
    this.volumes.clear();
    this.sshKeys.clear();
    this.scripts.clear();
    this.deployments.clear();
    this.secrets.clear();
    this.fileSecrets.clear();
    this.registryCredentials.clear();
    this.exchanges = [];
    this.requestCount = 0;
    this.billing = new Billing(this.clock, this.opts.balance, this.opts.currency);
  }

  /** Back to the starting state: no resources, full credit, the start-up fault rules. Tokens stay valid. */
  reset(): void {
    this.resetResources();
    this.limiter?.reset();
    this.faults.clear();
    if (this.opts.initialFaults.length > 0) this.faults.add(this.opts.initialFaults);
  }

  nextIp(): string {
    if (this.opts.ipAllocator) return this.opts.ipAllocator();
    // TEST-NET-3 addresses: never routable, obviously simulated.
    return `203.0.113.${(this.ipCounter++ % 254) + 1}`;
  }

  record(exchange: Exchange): void {
    if (!this.opts.recordExchanges) return;
    if (this.exchanges.length >= MAX_EXCHANGES) this.exchanges.shift();
    this.exchanges.push(exchange);
  }
}

/** The same key/value gets the same tag id project-wide (as live, 2026-09-11). */
export function toTags(input: unknown): Tag[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw fail.badRequest("tags must be an array");
  if (input.length > 10) throw fail.badRequest("At most 10 tags are allowed");
  return input.map((raw) => {
    const t = raw as Partial<TagInput>;
    if (typeof t?.key !== "string" || t.key.length === 0 || t.key.length > 63) throw fail.badRequest("tag key must be 1-63 characters");
    const value = t.value ?? "";
    if (typeof value !== "string" || value.length > 127) throw fail.badRequest("tag value must be at most 127 characters");
    const key = t.key.toLowerCase();
    const id = "tag_" + createHash("sha256").update(`${key}=${value}`).digest("base64url").replace(/[-_]/g, "").slice(0, 22);
    return { id, key, value };
  });
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
