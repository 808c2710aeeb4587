// Reads `pulumi preview --json` in either of its shapes: the single PreviewDigest object, or the
// JSON-lines engine event stream (PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true), which is the only one
// that carries policy violations.
import type { ChangeKind, Diagnostic, PlannedChange, PolicyViolation, PreviewData, ResourceState } from "./model";

type Json = Record<string, unknown>;

const KIND_OF_OP: Record<string, ChangeKind | null> = {
  same: null,
  create: "create",
  update: "update",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  "discard-replaced": "replace",
  delete: "delete",
  discard: "delete",
  read: "other",
  "read-replacement": "other",
  refresh: "other",
  import: "other",
  "import-replacement": "other",
  "remove-pending-replace": "other",
};

// Internal inputs that only carry the serialized dynamic provider.
const INTERNAL_KEYS = new Set(["__provider"]);

const asObject = (v: unknown): Json | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined);
const asStrings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

function stateOf(raw: unknown): ResourceState | undefined {
  const s = asObject(raw);
  if (!s) return undefined;
  return {
    type: typeof s.type === "string" ? s.type : undefined,
    parent: typeof s.parent === "string" ? s.parent : undefined,
    protect: s.protect === true,
    inputs: asObject(s.inputs),
    outputs: asObject(s.outputs),
  };
}

/** Top-level input keys whose values differ between two states. */
export function changedInputKeys(old?: ResourceState, next?: ResourceState): string[] {
  const a = old?.inputs ?? {};
  const b = next?.inputs ?? {};
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => !INTERNAL_KEYS.has(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .sort();
}

function changeOf(op: string, urn: string, fallbackType: string | undefined, old: ResourceState | undefined, next: ResourceState | undefined, reasons: string[]): PlannedChange | undefined {
  const kind = KIND_OF_OP[op] === undefined ? "other" : KIND_OF_OP[op];
  if (kind === null) return undefined;
  // Without the engine's reasons, compare inputs; only a step that has both states can say what changed.
  const changedKeys = reasons.length ? [...new Set(reasons)].filter((k) => !INTERNAL_KEYS.has(k)).sort() : old && next ? changedInputKeys(old, next) : [];
  return {
    kind,
    op,
    urn,
    type: next?.type ?? old?.type ?? fallbackType ?? "unknown",
    parent: next?.parent ?? old?.parent,
    protect: (old?.protect ?? false) || (next?.protect ?? false),
    changedKeys,
    old,
    new: next,
  };
}

/** One entry per URN: a replacement shows up as several engine steps. */
function mergeByUrn(changes: PlannedChange[]): PlannedChange[] {
  const byUrn = new Map<string, PlannedChange>();
  for (const c of changes) {
    const seen = byUrn.get(c.urn);
    if (!seen) byUrn.set(c.urn, c);
    else if (c.kind === "replace" && seen.kind === "replace") {
      seen.old ??= c.old;
      seen.new ??= c.new;
      seen.protect ||= c.protect;
      seen.changedKeys = [...new Set([...seen.changedKeys, ...c.changedKeys])].sort();
    }
  }
  return [...byUrn.values()];
}

function severityOf(raw: unknown): Diagnostic["severity"] | undefined {
  if (raw === "error") return "error";
  if (raw === "warning") return "warning";
  return undefined; // info, debug and program output are not part of the summary
}

function parseDigest(digest: Json): PreviewData {
  const changes: PlannedChange[] = [];
  for (const raw of Array.isArray(digest.steps) ? digest.steps : []) {
    const s = asObject(raw);
    if (!s || typeof s.op !== "string" || typeof s.urn !== "string") continue;
    const reasons = [...asStrings(s.replaceReasons), ...asStrings(s.diffReasons)];
    const change = changeOf(s.op, s.urn, undefined, stateOf(s.oldState), stateOf(s.newState), reasons);
    if (change) changes.push(change);
  }
  const diagnostics: Diagnostic[] = [];
  for (const raw of Array.isArray(digest.diagnostics) ? digest.diagnostics : []) {
    const d = asObject(raw);
    const severity = severityOf(d?.severity);
    if (d && severity && typeof d.message === "string") diagnostics.push({ severity, message: d.message.trim(), urn: typeof d.urn === "string" ? d.urn : undefined });
  }
  const summary = asObject(digest.changeSummary) ?? {};
  return {
    changes: mergeByUrn(changes),
    changeSummary: Object.fromEntries(Object.entries(summary).filter(([, v]) => typeof v === "number")) as Record<string, number>,
    diagnostics,
    policyViolations: [],
    policyEventsSeen: false,
  };
}

function parseEvents(lines: string[]): PreviewData {
  const changes: PlannedChange[] = [];
  const diagnostics: Diagnostic[] = [];
  const policyViolations: PolicyViolation[] = [];
  let changeSummary: Record<string, number> = {};
  let policyEventsSeen = false;
  for (const line of lines) {
    const event = JSON.parse(line) as Json;
    const pre = asObject(asObject(event.resourcePreEvent)?.metadata);
    if (pre && typeof pre.op === "string" && typeof pre.urn === "string") {
      const reasons = asStrings(pre.keys);
      const change = changeOf(pre.op, pre.urn, typeof pre.type === "string" ? pre.type : undefined, stateOf(pre.old), stateOf(pre.new), reasons);
      if (change) changes.push(change);
    }
    const diag = asObject(event.diagnosticEvent);
    const severity = severityOf(diag?.severity);
    if (diag && severity && typeof diag.message === "string") {
      diagnostics.push({ severity, message: diag.message.trim(), urn: typeof diag.urn === "string" ? diag.urn : undefined });
    }
    if (event.policyLoadEvent !== undefined) policyEventsSeen = true;
    const policy = asObject(event.policyEvent);
    if (policy) {
      policyEventsSeen = true;
      policyViolations.push({
        policy: String(policy.policyName ?? "policy"),
        pack: typeof policy.policyPackName === "string" ? policy.policyPackName : undefined,
        level: String(policy.enforcementLevel ?? "mandatory"),
        message: String(policy.message ?? "").trim(),
        urn: typeof policy.resourceUrn === "string" && policy.resourceUrn ? policy.resourceUrn : undefined,
      });
    }
    const summary = asObject(asObject(event.summaryEvent)?.resourceChanges);
    if (summary) changeSummary = Object.fromEntries(Object.entries(summary).filter(([, v]) => typeof v === "number")) as Record<string, number>;
  }
  return { changes: mergeByUrn(changes), changeSummary, diagnostics, policyViolations, policyEventsSeen };
}

/** Parses either output shape of `pulumi preview --json`; throws on anything else. */
export function parsePreview(text: string): PreviewData {
  const trimmed = text.trim();
  if (trimmed === "") throw new Error("the preview output is empty (did `pulumi preview --json` fail before it started?)");
  try {
    const whole = JSON.parse(trimmed) as unknown;
    const digest = asObject(whole);
    if (digest && ("steps" in digest || "changeSummary" in digest || "diagnostics" in digest)) return parseDigest(digest);
  } catch {
    // not a single document: the event stream
  }
  const lines = trimmed.split("\n").filter((l) => l.trim() !== "");
  try {
    return parseEvents(lines);
  } catch (e) {
    throw new Error(`not pulumi preview --json output (neither a digest nor an event stream): ${(e as Error).message}`);
  }
}
