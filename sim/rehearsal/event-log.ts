// Where a `pulumi up` spends its time: per-resource durations from the engine event
// stream of `pulumi up --json` (resourcePreEvent → resOutputsEvent, by URN), the slowest first.
import * as fs from "node:fs";

export interface StepTime {
  resource: string;
  ms: number;
}

interface EngineEvent {
  timestamp: number;
  resourcePreEvent?: { metadata: { urn: string; op: string } };
  resOutputsEvent?: { metadata: { urn: string; op: string } };
}

const isComponent = (urn: string) => {
  const type = urn.split("::")[2]?.split("$").pop() ?? "";
  return type.startsWith("comfyume:") || type === "pulumi:pulumi:Stack";
};

export function slowestSteps(eventLog: string, top = 6): StepTime[] {
  if (!fs.existsSync(eventLog)) return [];
  const started = new Map<string, number>();
  const times: StepTime[] = [];
  for (const line of fs.readFileSync(eventLog, "utf8").split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    let e: EngineEvent;
    try {
      e = JSON.parse(line) as EngineEvent;
    } catch {
      continue; // a multi-line JSON document rather than an event stream
    }
    const pre = e.resourcePreEvent?.metadata;
    const out = e.resOutputsEvent?.metadata;
    // Custom resources only: components and the stack just span their children.
    if (pre && pre.op !== "same" && !isComponent(pre.urn)) started.set(pre.urn, e.timestamp);
    if (out && started.has(out.urn)) {
      times.push({ resource: out.urn.split("::").pop() ?? out.urn, ms: (e.timestamp - started.get(out.urn)!) * 1000 });
    }
  }
  return times.sort((a, b) => b.ms - a.ms).slice(0, top);
}

export interface TimelineRow {
  resource: string;
  /** The engine's step: create, read (a StackReference), update, ... */
  op: string;
  /** Seconds after the update's first event (the engine stamps whole seconds). */
  startS: number;
  endS: number;
}

/**
 * The day up's custom resources in the order they started, with start and end (whole seconds after the update's
 * first event), and the update's own duration from the engine's summary: what ran beside what, and what waited.
 */
export function timeline(eventLog: string): { rows: TimelineRow[]; updateS?: number } {
  if (!fs.existsSync(eventLog)) return { rows: [] };
  let first: number | undefined;
  let updateS: number | undefined;
  const started = new Map<string, { at: number; op: string }>();
  const rows: TimelineRow[] = [];
  for (const line of fs.readFileSync(eventLog, "utf8").split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    let e: EngineEvent & { summaryEvent?: { durationSeconds?: number } };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    if (typeof e.timestamp !== "number") continue;
    first ??= e.timestamp;
    if (e.summaryEvent?.durationSeconds !== undefined) updateS = e.summaryEvent.durationSeconds;
    const pre = e.resourcePreEvent?.metadata;
    const out = e.resOutputsEvent?.metadata;
    if (pre && pre.op !== "same" && !isComponent(pre.urn)) started.set(pre.urn, { at: e.timestamp, op: pre.op });
    const start = out ? started.get(out.urn) : undefined;
    if (out && start) rows.push({ resource: out.urn.split("::").pop() ?? out.urn, op: start.op, startS: start.at - first, endS: e.timestamp - first });
  }
  return { rows: rows.sort((a, b) => a.startS - b.startS || a.endS - b.endS), updateS };
}

/** When the update's first create started (whole seconds after its first event): what program start, reads and gate cost. */
export function firstCreateS(t: ReturnType<typeof timeline>): number | undefined {
  return t.rows.find((r) => r.op === "create")?.startS;
}

/** The timeline as a table: start, end, a bar of the seconds it ran, the resource. */
export function timelineTable(t: ReturnType<typeof timeline>): string {
  const lines = t.rows.map((r) => `${String(r.startS).padStart(5)} ${String(r.endS).padStart(5)}  ${"#".repeat(Math.max(1, r.endS - r.startS)).padEnd(12)} ${r.resource}`);
  return ["start   end  (s after the update began)", ...lines].join("\n");
}
