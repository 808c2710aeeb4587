// The day-up timeline from `pulumi up --json` events: each custom resource's start and end, its step, and when
// the first create started (what program start, the layer reads and the money gate cost before it).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { firstCreateS, timeline } from "../../sim/rehearsal/event-log";

const urn = (type: string, name: string) => `urn:pulumi:workshop-day::comfyume::${type}::${name}`;
const event = (timestamp: number, kind: "resourcePreEvent" | "resOutputsEvent", op: string, u: string) => JSON.stringify({ timestamp, [kind]: { metadata: { op, urn: u } } });

describe("the day-up timeline", () => {
  it("gives each resource's step and the first create's start, after the StackReference reads", () => {
    const idle = urn("pulumi:pulumi:StackReference", "idle");
    const worker = urn("comfyume:verda:GpuWorker", "worker");
    const script = urn("pulumi-nodejs:dynamic/verda:StartupScript", "worker-first-boot");
    const instance = urn("pulumi-nodejs:dynamic/verda:Instance", "worker-instance");
    const lines = [
      JSON.stringify({ timestamp: 100, preludeEvent: {} }),
      event(103, "resourcePreEvent", "read", idle),
      event(103, "resOutputsEvent", "read", idle),
      event(105, "resourcePreEvent", "create", worker),
      event(106, "resourcePreEvent", "create", script),
      event(106, "resOutputsEvent", "create", script),
      event(106, "resourcePreEvent", "create", instance),
      event(111, "resOutputsEvent", "create", instance),
      event(111, "resOutputsEvent", "create", worker),
      JSON.stringify({ timestamp: 112, summaryEvent: { durationSeconds: 12 } }),
    ];
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "event-log-")), "events.jsonl");
    fs.writeFileSync(file, lines.join("\n"));
    const t = timeline(file);
    expect(t.rows).toEqual([
      { resource: "idle", op: "read", startS: 3, endS: 3 },
      { resource: "worker-first-boot", op: "create", startS: 6, endS: 6 },
      { resource: "worker-instance", op: "create", startS: 6, endS: 11 },
    ]);
    expect(firstCreateS(t)).toBe(6);
    expect(t.updateS).toBe(12);
    expect(firstCreateS(timeline(path.join(path.dirname(file), "missing.jsonl")))).toBeUndefined();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});
