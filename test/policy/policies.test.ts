// The pack's wiring: which rules run for which stacks, and how the scratch rules read old state.
import type { Policy, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { describe, expect, it, vi } from "vitest";
import { buildPolicies } from "../../policy/policies";
import { TYPES } from "../../policy/resources";
import type { StackState } from "../../policy/state";

const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::comfyume::comfyume:verda:GpuWorker$${type}::${name}`;

function resourceArgs(stack: string, type: string, props: Record<string, unknown>, protect = false): ResourceValidationArgs {
  return {
    type,
    props,
    urn: urn(stack, type, "r"),
    name: "r",
    opts: { protect, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] },
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => ({}) as T,
    notApplicable: () => {
      throw new Error("not applicable");
    },
  };
}

function stackArgs(resources: { urn: string; type: string; props: Record<string, unknown> }[]): StackValidationArgs {
  return {
    resources: resources.map((r) => ({ ...r, name: "r", opts: resourceArgs("x", r.type, {}).opts, dependencies: [], propertyDependencies: {}, isType: () => false, asType: () => undefined })),
    stackTags: new Map(),
    getConfig: <T extends object>() => ({}) as T,
    notApplicable: () => {
      throw new Error("not applicable");
    },
  };
}

const byName = (policies: Policy[], name: string) => policies.find((p) => p.name === name)!;

async function resourceViolations(policy: Policy, args: ResourceValidationArgs): Promise<string[]> {
  const found: string[] = [];
  const validate = (policy as ResourceValidationPolicy).validateResource;
  for (const fn of Array.isArray(validate) ? validate : validate ? [validate] : []) await fn(args, (m: string) => found.push(m));
  return found;
}

async function stackViolations(policy: Policy, args: StackValidationArgs): Promise<string[]> {
  const found: string[] = [];
  await (policy as StackValidationPolicy).validateStack(args, (m) => found.push(m));
  return found;
}

const noState = () => ({ exists: false, resources: [] }) satisfies StackState;

describe("guardrail policies", () => {
  it("are all mandatory and named for what they guard", () => {
    const policies = buildPolicies({ readState: noState });
    expect(policies.map((p) => p.name)).toEqual([
      "no-verda-instance-in-idle",
      "data-resources-protected",
      "instance-type-allow-list",
      "startup-script-no-secrets",
      "day-instance-backup-hook",
      "scratch-not-replaced-while-day-up",
      "scratch-not-removed-while-day-up",
    ]);
    expect(new Set(policies.map((p) => p.enforcementLevel))).toEqual(new Set(["mandatory"]));
  });

  it("leave stacks that name no phase alone (the program refuses them; tests use them)", async () => {
    const readState = vi.fn(noState);
    const policies = buildPolicies({ readState });
    expect(await resourceViolations(byName(policies, "data-resources-protected"), resourceArgs("dev", TYPES.volume, { type: "NVMe_Shared" }))).toEqual([]);
    expect(await resourceViolations(byName(policies, "instance-type-allow-list"), resourceArgs("dev", TYPES.instance, { instanceType: "nope" }))).toEqual([]);
    expect(await resourceViolations(byName(policies, "scratch-not-replaced-while-day-up"), resourceArgs("dev", TYPES.volume, { type: "NVMe" }))).toEqual([]);
    expect(readState).not.toHaveBeenCalled();
  });

  it("apply the phase's rules to phase stacks", async () => {
    const policies = buildPolicies({ readState: noState });
    expect(await resourceViolations(byName(policies, "no-verda-instance-in-idle"), resourceArgs("idle", TYPES.instance, {}))).toHaveLength(1);
    expect(await resourceViolations(byName(policies, "data-resources-protected"), resourceArgs("workshop-month", TYPES.r2Bucket, {}))).toHaveLength(1);
    expect(await resourceViolations(byName(policies, "data-resources-protected"), resourceArgs("workshop-month", TYPES.volume, { type: "NVMe" }))).toEqual([expect.stringMatching(/month's scratch volume/)]);
    expect(await resourceViolations(byName(policies, "data-resources-protected"), resourceArgs("workshop-day", TYPES.volume, { type: "NVMe" }))).toEqual([]);
    expect(await resourceViolations(byName(policies, "instance-type-allow-list"), resourceArgs("testing-day", TYPES.instance, { instanceType: "1H100.80S.32V" }))).toHaveLength(1);
    expect(await resourceViolations(byName(policies, "instance-type-allow-list"), resourceArgs("workshop-day", TYPES.instance, { instanceType: "1H100.80S.32V" }))).toEqual([]);
    const instanceOnly = stackArgs([{ urn: urn("workshop-day", TYPES.instance, "i"), type: TYPES.instance, props: {} }]);
    expect(await stackViolations(byName(policies, "day-instance-backup-hook"), instanceOnly)).toHaveLength(1);
    const monthInstance = stackArgs([{ urn: urn("workshop-month", TYPES.instance, "loader"), type: TYPES.instance, props: {} }]);
    expect(await stackViolations(byName(policies, "day-instance-backup-hook"), monthInstance)).toEqual([]);
  });

  it("judge a month stack's scratch by whether its day stack is up, reading each state once", async () => {
    const scratchUrn = urn("workshop-month", TYPES.volume, "scratch");
    const states: Record<string, StackState> = {
      "workshop-month": { exists: true, resources: [{ urn: scratchUrn, type: TYPES.volume, inputs: { type: "NVMe", size: 100, locationCode: "FIN-01" } }] },
      "workshop-day": { exists: true, resources: [{ urn: "urn:pulumi:workshop-day::comfyume::x", type: TYPES.instance, inputs: {} }] },
    };
    const readState = vi.fn((stack: string) => states[stack] ?? noState());
    const policies = buildPolicies({ readState });
    const moved = { ...resourceArgs("workshop-month", TYPES.volume, { type: "NVMe", size: 100, locationCode: "FIN-03" }), urn: scratchUrn };
    expect(await resourceViolations(byName(policies, "scratch-not-replaced-while-day-up"), moved)).toEqual([expect.stringMatching(/day stack workshop-day is up/)]);
    expect(await stackViolations(byName(policies, "scratch-not-removed-while-day-up"), stackArgs([{ urn: urn("workshop-month", TYPES.volume, "sfs"), type: TYPES.volume, props: {} }]))).toHaveLength(1);
    expect(readState.mock.calls.map(([s]) => s).sort()).toEqual(["workshop-day", "workshop-month"]);
  });

  it("fail closed when the stack itself is not found (wrong project or backend read)", async () => {
    const policies = buildPolicies({ readState: noState });
    expect(await resourceViolations(byName(policies, "scratch-not-replaced-while-day-up"), resourceArgs("workshop-day", TYPES.volume, { type: "NVMe" }))).toEqual([
      expect.stringMatching(/stack workshop-day was not found/),
    ]);
  });

  it("fail closed when the old state cannot be read", async () => {
    const policies = buildPolicies({
      readState: () => {
        throw new Error("cannot read the state of stack workshop-day");
      },
    });
    expect(await resourceViolations(byName(policies, "scratch-not-replaced-while-day-up"), resourceArgs("workshop-day", TYPES.volume, { type: "NVMe" }))).toEqual([
      expect.stringMatching(/Cannot check the scratch volume: cannot read the state/),
    ]);
  });
});
