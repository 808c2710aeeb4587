// Environments are the operator's: any valid name gets month and day stacks; a name that breaks the
// rule is refused, naming the stack and the rule, before anything else.
import { describe, expect, it } from "vitest";
import { formatIssues, loadConfig, validateConfig, type ConfigIssue, type RawConfig } from "../../infra/config";
import { environmentNameProblem, phaseOfStackName } from "../../infra/config/phase";
import { DAY_SECRET_KEYS, IDLE_SECRET_KEYS, MONTH_SECRET_KEYS, dayValues, idleValues, monthValues, raw } from "../support/fixtures";

function issuesOf(r: RawConfig): ConfigIssue[] {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  return result.issues;
}

const month = (env: string, stack = `${env}-month`) => raw(stack, { ...monthValues(), "comfyume:phase": `${env}-month` }, MONTH_SECRET_KEYS);
const day = (env: string, stack = `${env}-day`, patch: Record<string, unknown> = {}) =>
  raw(stack, { ...dayValues(), "comfyume:phase": `${env}-day`, ...patch }, DAY_SECRET_KEYS);

describe("stacks of any environment", () => {
  it.each(["prod", "staging", "testing-eu"])("%s: the month and day stacks validate and layer on each other", (env) => {
    const m = loadConfig(month(env));
    expect(m).toMatchObject({ layer: "month", phase: `${env}-month`, environment: env, stackRefs: { idle: "organization/comfyume/idle" } });
    if (m.layer === "month") expect(m.sfs.name).toBe(`comfyume-${env}-sfs`);
    const d = loadConfig(day(env));
    expect(d).toMatchObject({ layer: "day", phase: `${env}-day`, environment: env });
    expect(d.stackRefs).toEqual({ idle: "organization/comfyume/idle", month: `organization/comfyume/${env}-month` });
    if (d.layer === "day") expect(d.gpu.hostname).toBe(`comfyume-${env}-day`);
  });

  it("accepts a prefixed stack of a new environment, like rehearsal-workshop-day", () => {
    const d = loadConfig(day("staging", "rehearsal-staging-day", { "comfyume:stackRefs": { idle: "rehearsal-idle", month: "rehearsal-staging-month" } }));
    expect(d.stackRefs).toEqual({ idle: "organization/comfyume/rehearsal-idle", month: "organization/comfyume/rehearsal-staging-month" });
  });

  it("needs an instance type and an image on a day of any environment but testing", () => {
    const issues = issuesOf(day("prod", "prod-day", { "comfyume:gpu": {} }));
    expect(issues.map((i) => `${i.key}: ${i.problem}`)).toEqual([
      "comfyume:gpu.instanceType: is missing: the prod day's Verda instance type",
      "comfyume:gpu.image: is missing: the prod worker's OS image (with CUDA and Docker)",
    ]);
  });

  it("keeps the testing and workshop rules", () => {
    expect(validateConfig(raw("testing-day", dayValues("testing"), DAY_SECRET_KEYS)).ok).toBe(true);
    const gpu = issuesOf(raw("testing-day", { ...dayValues("testing"), "comfyume:gpu": { instanceType: "1A100.22V" } }, DAY_SECRET_KEYS));
    expect(gpu[0].problem).toContain("GPU type '1A100.22V' on testing-day");
  });
});

describe("a bad environment name", () => {
  it.each([
    ["Prod-day", /'Prod-day' of stack 'Prod-day' is not a phase: .*environment name is 1-32 lowercase letters/],
    ["prod_eu-day", /'prod_eu-day' of stack 'prod_eu-day' is not a phase/],
    ["idle-day", /'idle-day' of stack 'idle-day' is not a phase/],
    ["my-day-off-month", /'my-day-off-month' of stack 'my-day-off-month' is not a phase/],
  ])("%s is refused naming the stack and the rule, before anything else", (phase, message) => {
    const issues = issuesOf(raw(phase, { ...dayValues(), "comfyume:phase": phase }, DAY_SECRET_KEYS));
    expect(issues, formatIssues(phase, issues)).toHaveLength(1);
    expect(issues[0].key).toBe("comfyume:phase");
    expect(issues[0].problem).toMatch(message);
  });

  it("explains which part breaks the rule", () => {
    expect(environmentNameProblem("my-day-off")).toMatch(/has the part 'day'/);
    expect(environmentNameProblem("prod")).toBeUndefined();
    expect(phaseOfStackName("rehearsal-testing-month")).toBe("testing-month");
  });
});

describe("the watchdog's day stack", () => {
  const idleWith = (dayStack: string) => raw("idle", { ...idleValues(), "comfyume:watchdog": { dayStack } }, IDLE_SECRET_KEYS);

  it("may be the day stack of any environment", () => {
    for (const dayStack of ["prod-day", "staging-eu-day", "rehearsal-workshop-day"]) {
      const result = validateConfig(idleWith(dayStack));
      expect(result.ok ? [] : result.issues, dayStack).toEqual([]);
    }
  });

  it("must name a day stack: a month stack or a typo is refused by name", () => {
    for (const dayStack of ["prod-month", "prod"]) {
      const issues = issuesOf(idleWith(dayStack));
      expect(issues.map((i) => i.key), dayStack).toEqual(["comfyume:watchdog.dayStack"]);
      expect(issues[0].problem).toMatch(new RegExp(`'${dayStack}' is not a day stack`));
      expect(issues[0].fix).toBe("scripts/pulumi config set --path 'comfyume:watchdog.dayStack' workshop-day --stack idle");
    }
  });
});
