// Fault injection rules: validated with zod, matched per request or per resource, and consumed
// `count` times (unlimited when omitted). The rule format is documented in docs/simulator.md.
import { z } from "zod";
import { ApiError, codeForStatus, type ErrorCode } from "./http";

const count = z.number().int().positive().optional();
const requestMatch = {
  method: z.string().min(1).optional(),
  path: z.string().startsWith("/").optional(),
  content_type: z.string().min(1).optional(),
};

const httpRule = z.strictObject({
  type: z.literal("http"),
  id: z.string().optional(),
  count,
  ...requestMatch,
  status: z.number().int().min(100).max(599),
  code: z.string().min(1).optional(),
  message: z.string().optional(),
  retry_after: z.number().int().nonnegative().optional(),
  // The request takes effect first and only its answer is the error ("created, then 5xx").
  after_apply: z.boolean().optional(),
});
const latencyRule = z.strictObject({
  type: z.literal("latency"),
  id: z.string().optional(),
  count,
  ...requestMatch,
  ms: z.number().int().nonnegative().max(120_000),
});
const noCapacityRule = z.strictObject({
  type: z.literal("no_capacity"),
  id: z.string().optional(),
  count,
  instance_type: z.string().optional(),
  location_code: z.string().optional(),
});
const instanceOutcomeRule = z.strictObject({
  type: z.literal("instance_outcome"),
  id: z.string().optional(),
  count,
  outcome: z.enum(["stuck_provisioning", "error", "no_capacity", "installation_failed"]),
  instance_type: z.string().optional(),
  hostname: z.string().optional(),
  location_code: z.string().optional(),
});
const fundsRule = z.strictObject({
  type: z.literal("insufficient_funds"),
  id: z.string().optional(),
  count,
  ...requestMatch,
});
const sfsRule = z.strictObject({
  type: z.literal("sfs_pseudo_path_change"),
  id: z.string().optional(),
  count,
  volume_id: z.string().optional(),
  volume_name: z.string().optional(),
  after_ms: z.number().int().nonnegative().optional(),
});

// The delete (or another) action answers 207 with a per-instance error and changes nothing.
const partialActionRule = z.strictObject({
  type: z.literal("action_partial"),
  id: z.string().optional(),
  count,
  action: z.string().min(1).optional(),
  status_code: z.number().int().min(400).max(599).optional(),
  message: z.string().optional(),
});
// Block volumes detached by an instance delete stay `detaching` while the rule is active (until cleared).
const stuckDetachingRule = z.strictObject({
  type: z.literal("volume_stuck_detaching"),
  id: z.string().optional(),
  volume_id: z.string().optional(),
  volume_name: z.string().optional(),
});

export const faultRuleSchema = z.discriminatedUnion("type", [
  httpRule,
  latencyRule,
  noCapacityRule,
  instanceOutcomeRule,
  fundsRule,
  sfsRule,
  partialActionRule,
  stuckDetachingRule,
]);

export type FaultRule = z.infer<typeof faultRuleSchema>;
export type SfsPseudoPathFaultRule = z.infer<typeof sfsRule>;
export type PartialActionFaultRule = z.infer<typeof partialActionRule>;
export type InstanceOutcome = z.infer<typeof instanceOutcomeRule>["outcome"];

/** Parses one rule or an array of rules; throws an Error naming the first problem. */
export function parseFaultRules(input: unknown): FaultRule[] {
  const list = Array.isArray(input) ? input : [input];
  return list.map((raw, i) => {
    const parsed = faultRuleSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`fault rule ${i}: ${issue?.path.join(".") || "(rule)"}: ${issue?.message ?? "invalid"}`);
    }
    return parsed.data;
  });
}

/** `{param}` matches one path segment, `*` matches anything. */
export function pathPatternMatches(pattern: string, path: string): boolean {
  const escaped = pattern
    .split(/(\{[^}/]+\}|\*)/)
    .map((part) => (part === "*" ? ".*" : /^\{[^}/]+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${escaped}$`).test(path);
}

interface RequestInfo {
  method: string;
  path: string;
  contentType: string;
}

function requestMatches(rule: { method?: string; path?: string; content_type?: string }, req: RequestInfo): boolean {
  if (rule.method && rule.method.toUpperCase() !== req.method) return false;
  if (rule.path && !pathPatternMatches(rule.path, req.path)) return false;
  if (rule.content_type && !req.contentType.includes(rule.content_type)) return false;
  return true;
}

const CREATE_CALLS = ["POST /v1/instances", "POST /v1/volumes"];

export class FaultSet {
  private rules: FaultRule[] = [];
  private nextId = 1;
  /** Fired after rules are added, so resource-level rules (SFS) can be scheduled. */
  onAdded: (rules: FaultRule[]) => void = () => undefined;

  add(input: unknown): FaultRule[] {
    const parsed = parseFaultRules(input).map((r) => ({ ...r, id: r.id ?? `fault-${this.nextId++}` }));
    this.rules.push(...parsed);
    this.onAdded(parsed);
    return parsed;
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  clear(): void {
    this.rules = [];
  }

  /** Uses up one firing of a rule; removes it when exhausted. */
  consume(rule: FaultRule): void {
    if (!("count" in rule) || rule.count === undefined) return;
    rule.count -= 1;
    if (rule.count <= 0) this.rules = this.rules.filter((r) => r !== rule);
  }

  private find<T extends FaultRule["type"]>(type: T, pred: (r: Extract<FaultRule, { type: T }>) => boolean) {
    return this.rules.find((r): r is Extract<FaultRule, { type: T }> => r.type === type && pred(r as Extract<FaultRule, { type: T }>));
  }

  /** Total added latency for a request (every matching latency rule fires). */
  takeLatency(req: RequestInfo): number {
    let ms = 0;
    for (const rule of [...this.rules]) {
      if (rule.type === "latency" && requestMatches(rule, req)) {
        ms += rule.ms;
        this.consume(rule);
      }
    }
    return ms;
  }

  /** An injected error response for this request, if any. */
  takeHttpError(req: RequestInfo): ApiError | undefined {
    return this.takeHttpFault(req)?.error;
  }

  /** The injected error and whether the request is carried out before it is answered (`after_apply`). */
  takeHttpFault(req: RequestInfo): { error: ApiError; afterApply: boolean } | undefined {
    const rule = this.find("http", (r) => requestMatches(r, req));
    if (!rule) return undefined;
    return { error: this.httpError(rule), afterApply: rule.after_apply === true };
  }

  private httpError(rule: Extract<FaultRule, { type: "http" }>): ApiError {
    this.consume(rule);
    const code = (rule.code ?? codeForStatus(rule.status)) as ErrorCode;
    const headers: Record<string, string> = rule.retry_after === undefined ? {} : { "Retry-After": String(rule.retry_after) };
    return new ApiError(rule.status, code, rule.message ?? `Injected fault (${rule.status})`, headers);
  }

  /** Insufficient funds; without method/path the rule applies to instance and volume creation. */
  takeInsufficientFunds(req: RequestInfo): boolean {
    const rule = this.find("insufficient_funds", (r) =>
      r.method || r.path || r.content_type ? requestMatches(r, req) : CREATE_CALLS.includes(`${req.method} ${req.path}`),
    );
    if (!rule) return false;
    this.consume(rule);
    return true;
  }

  /** Whether a type has no capacity at a location; `consume` when a create is refused. */
  noCapacity(instanceType: string, location: string, consume: boolean): boolean {
    const rule = this.find(
      "no_capacity",
      (r) => (!r.instance_type || r.instance_type === instanceType) && (!r.location_code || r.location_code === location),
    );
    if (rule && consume) this.consume(rule);
    return rule !== undefined;
  }

  takeInstanceOutcome(instanceType: string, hostname: string, location: string): InstanceOutcome | undefined {
    const rule = this.find(
      "instance_outcome",
      (r) =>
        (!r.instance_type || r.instance_type === instanceType) &&
        (!r.hostname || r.hostname === hostname) &&
        (!r.location_code || r.location_code === location),
    );
    if (!rule) return undefined;
    this.consume(rule);
    return rule.outcome;
  }

  /** A 207-style per-instance failure for this action, if a rule matches (consumed). */
  takePartialAction(action: string): PartialActionFaultRule | undefined {
    const rule = this.find("action_partial", (r) => !r.action || r.action === action);
    if (!rule) return undefined;
    const fired = { ...rule };
    this.consume(rule);
    return fired;
  }

  /** The id of an active stuck-detaching rule for this volume (it holds until cleared). */
  stuckDetaching(volumeId: string, volumeName: string): string | undefined {
    const rule = this.find(
      "volume_stuck_detaching",
      (r) => (!r.volume_id || r.volume_id === volumeId) && (!r.volume_name || r.volume_name === volumeName),
    );
    return rule?.id;
  }

  /** Whether a rule with this id is still active (a stuck volume stays stuck until its rule is cleared). */
  has(id: string): boolean {
    return this.rules.some((r) => r.id === id);
  }

  sfsRules(): SfsPseudoPathFaultRule[] {
    return this.rules.filter((r): r is SfsPseudoPathFaultRule => r.type === "sfs_pseudo_path_change");
  }
}
