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
