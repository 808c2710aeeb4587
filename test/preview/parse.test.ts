// Both shapes of `pulumi preview --json`, reduced to one change per resource.
import { describe, expect, it } from "vitest";
import { changedInputKeys, parsePreview } from "../../scripts/preview/parse";

const urn = (name: string, type = "pulumi-nodejs:dynamic/verda:Volume") => `urn:pulumi:workshop-day::comfyume::comfyume:verda:GpuWorker$${type}::${name}`;
const parent = "urn:pulumi:workshop-day::comfyume::comfyume:verda:GpuWorker::worker";
const state = (inputs: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: "pulumi-nodejs:dynamic/verda:Volume", parent, inputs: { __provider: "exports.handler = ...", ...inputs }, ...extra });

describe("the --json digest", () => {
  const digest = {
    steps: [
      { op: "same", urn: urn("keep"), oldState: state({}), newState: state({}) },
      { op: "replace", urn: urn("scratch"), oldState: state({ locationCode: "FIN-01", size: 1 }), newState: state({ locationCode: "FIN-02", size: 1 }) },
      { op: "update", urn: urn("sfs"), oldState: state({ size: 1 }, { protect: true }), newState: state({ size: 2 }, { protect: true }), diffReasons: ["size"] },
      { op: "delete", urn: urn("old"), oldState: state({}) },
      { op: "create", urn: urn("new"), newState: state({}) },
      { op: "read", urn: urn("looked-up"), newState: state({}) },
    ],
    diagnostics: [
      { message: "boom\n", severity: "error", urn: urn("scratch") },
      { message: "careful", severity: "warning" },
      { message: "chatter", severity: "info" },
      { message: "stderr", severity: "info#err" },
    ],
    changeSummary: { same: 1, replace: 1, update: 1, delete: 1, create: 1 },
  };

  it("keeps every change but `same`, with its component and what changed", () => {
    const data = parsePreview(JSON.stringify(digest));
    expect(data.changes.map((c) => [c.kind, c.urn.split("::").pop(), c.changedKeys])).toEqual([
      ["replace", "scratch", ["locationCode"]],
      ["update", "sfs", ["size"]],
      ["delete", "old", []],
      ["create", "new", []],
      ["other", "looked-up", []],
    ]);
    expect(data.changes[0].parent).toBe(parent);
    expect(data.changes[1].protect).toBe(true);
    expect(data.changeSummary).toEqual(digest.changeSummary);
  });

  it("keeps errors and warnings only, and says it has no policy results", () => {
    const data = parsePreview(JSON.stringify(digest));
    expect(data.diagnostics).toEqual([
      { severity: "error", message: "boom", urn: urn("scratch") },
      { severity: "warning", message: "careful", urn: undefined },
    ]);
    expect(data.policyEventsSeen).toBe(false);
  });
});

describe("the streaming event form", () => {
  const events = [
    { policyLoadEvent: {} },
    { resourcePreEvent: { metadata: { op: "create-replacement", urn: urn("scratch"), type: "pulumi-nodejs:dynamic/verda:Volume", old: state({ locationCode: "A" }), new: state({ locationCode: "B" }), keys: ["locationCode"] } } },
    { resourcePreEvent: { metadata: { op: "replace", urn: urn("scratch"), type: "pulumi-nodejs:dynamic/verda:Volume", old: state({ locationCode: "A" }), new: state({ locationCode: "B" }), keys: ["locationCode"] } } },
    { resourcePreEvent: { metadata: { op: "delete-replaced", urn: urn("scratch"), type: "pulumi-nodejs:dynamic/verda:Volume", old: state({ locationCode: "A" }) } } },
    { diagnosticEvent: { severity: "debug", message: "Registering resource" } },
    { diagnosticEvent: { severity: "error", message: "preview failed\n" } },
    { policyEvent: { resourceUrn: urn("scratch"), message: "Never.\nDetails.\n", policyName: "scratch-not-replaced-while-day-up", policyPackName: "comfyume-guardrails", enforcementLevel: "mandatory" } },
    { summaryEvent: { resourceChanges: { replace: 1, same: 3 } } },
  ].map((e, sequence) => JSON.stringify({ sequence, ...e }));

  it("folds a replacement's steps into one change and collects policy violations", () => {
    const data = parsePreview(events.join("\n"));
    expect(data.changes).toHaveLength(1);
    expect(data.changes[0]).toMatchObject({ kind: "replace", changedKeys: ["locationCode"] });
    expect(data.policyViolations).toEqual([
      { policy: "scratch-not-replaced-while-day-up", pack: "comfyume-guardrails", level: "mandatory", message: "Never.\nDetails.", urn: urn("scratch") },
    ]);
    expect(data.diagnostics).toEqual([{ severity: "error", message: "preview failed", urn: undefined }]);
    expect(data.changeSummary).toEqual({ replace: 1, same: 3 });
    expect(data.policyEventsSeen).toBe(true);
  });
});

describe("input errors", () => {
  it("refuses empty and foreign input with a reason", () => {
    expect(() => parsePreview("  \n")).toThrow(/empty/);
    expect(() => parsePreview("Previewing update (dev):\n  + create")).toThrow(/not pulumi preview --json output/);
  });

  it("compares inputs without the serialized dynamic provider", () => {
    expect(changedInputKeys({ inputs: { __provider: "a", x: 1, y: [1] } }, { inputs: { __provider: "b", x: 1, y: [2], z: true } })).toEqual(["y", "z"]);
  });
});
