// The policy pack for any environment name: layer lists with per-environment overrides.
import { describe, expect, it } from "vitest";
import { allowedInstanceTypes, DEFAULT_ALLOWED_INSTANCE_TYPES } from "../../policy/config";
import { phaseOfStack } from "../../policy/phase";
import { buildPolicies } from "../../policy/policies";
import { instanceTypeViolation } from "../../policy/rules/instance-type";
import { TYPES } from "../../policy/resources";
import type { ResourceValidationArgs } from "@pulumi/policy";

const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::comfyume::${type}::${name}`;

/** Runs the instance-type policy on one instance of `stack` with the given policy config. */
function instanceTypeReport(stack: string, instanceType: string, config: unknown = {}): string[] {
  const policy = buildPolicies({ readState: () => ({ exists: true, resources: [] }) as never }).find((p) => p.name === "instance-type-allow-list")!;
  const messages: string[] = [];
  const args = { urn: urn(stack, TYPES.instance, "worker-instance"), type: TYPES.instance, props: { instanceType }, getConfig: () => config } as unknown as ResourceValidationArgs;
  (policy as { validateResource: (a: ResourceValidationArgs, r: (m: string) => void) => void }).validateResource(args, (m) => messages.push(m));
  return messages;
}

describe("stacks of any environment", () => {
  it("names the phase of prod, staging and dashed environments", () => {
    expect(phaseOfStack("prod-month")).toBe("prod-month");
    expect(phaseOfStack("prod-day")).toBe("prod-day");
    expect(phaseOfStack("staging-day")).toBe("staging-day");
    expect(phaseOfStack("staging-eu-day")).toBe("staging-eu-day");
    expect(phaseOfStack("prod-day-2")).toBe("prod-day");
    // A prefix resolves to an environment the policy config names; testing/workshop are always known.
    expect(phaseOfStack("rehearsal-prod-day", ["prod"])).toBe("prod-day");
    expect(phaseOfStack("rehearsal-workshop-day")).toBe("workshop-day");
    expect(phaseOfStack("Prod-day")).toBeUndefined();
  });

  it("accepts prod-day with the day layer's types and refuses a GPU on a month stack of any environment", () => {
    expect(instanceTypeReport("prod-day", "1H100.80S.32V")).toEqual([]);
    expect(instanceTypeReport("staging-day", "CPU.4V.16G")).toEqual([]);
    for (const stack of ["prod-month", "staging-month", "testing-month", "workshop-month"]) {
      expect(instanceTypeReport(stack, "1A100.22V").join(" ")).toMatch(/1A100.22V is not allowed in .*-month/);
    }
  });

  it("takes the layer list for every environment and a phase list for one", () => {
    const config = { allowedInstanceTypes: { day: ["1A100.22V"], "prod-day": ["1H100.80S.32V"] } };
    expect(allowedInstanceTypes(config, "prod-day")).toEqual(["1H100.80S.32V"]);
    expect(allowedInstanceTypes(config, "staging-day")).toEqual(["1A100.22V"]);
    expect(allowedInstanceTypes(config, "workshop-day")).toEqual(["1A100.22V"]);
    expect(allowedInstanceTypes(undefined, "testing-day")).toEqual(DEFAULT_ALLOWED_INSTANCE_TYPES["testing-day"]);
    expect(instanceTypeReport("rehearsal-prod-day", "1A100.22V", config).join(" ")).toMatch(/not allowed in prod-day \(allowed: 1H100.80S.32V\)/);
    expect(instanceTypeReport("staging-day", "1H100.80S.32V", config).join(" ")).toMatch(/not allowed in staging-day \(allowed: 1A100.22V\)/);
  });

  it("keeps the built-in defaults of testing and workshop", () => {
    expect(instanceTypeViolation(TYPES.instance, { instanceType: "1H100.80S.22V" }, "testing-day", allowedInstanceTypes(undefined, "testing-day"))).toMatch(/not allowed in testing-day/);
    expect(allowedInstanceTypes(undefined, "workshop-day")).toEqual(DEFAULT_ALLOWED_INSTANCE_TYPES["workshop-day"]);
  });
});
