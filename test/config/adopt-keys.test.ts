// The adoption keys (docs/adopting.md): `adopt: { id?, name? }` under sfs, scratch and gpu, validated with the
// setting and the fix in the message, and handed to the layers as cfg.sfs.adopt / cfg.scratch.adopt / cfg.gpu.adopt.
import { describe, expect, it } from "vitest";
import { formatIssues, loadConfig, validateConfig, type DayConfig, type MonthConfig, type RawConfig } from "../../infra/config";
import { DAY_SECRET_KEYS, MONTH_SECRET_KEYS, dayValues, monthValues, raw } from "../support/fixtures";

const month = (patch: Record<string, unknown>) => raw("workshop-month", { ...monthValues(), ...patch }, MONTH_SECRET_KEYS);
const day = (patch: Record<string, unknown>) => raw("workshop-day", { ...dayValues(), ...patch }, DAY_SECRET_KEYS);

function issueFor(r: RawConfig, key: string) {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  const issue = result.issues.find((i) => i.key === key);
  expect(issue, formatIssues(r.stack, result.issues)).toBeDefined();
  return issue!;
}

describe("adopt keys", () => {
  it("hand the SFS's and the month scratch's adopt reference to the month layer", () => {
    const cfg = loadConfig(month({ "comfyume:sfs": { adopt: { id: "be539393-aaaa" } }, "comfyume:scratch": { lifetime: "month", adopt: { name: "PROD_scratch" } } })) as MonthConfig;
    expect(cfg.sfs.adopt).toEqual({ id: "be539393-aaaa" });
    expect(cfg.scratch.adopt).toEqual({ name: "PROD_scratch" });
  });

  it("hand the instance's adopt reference to the day layer (with a month scratch)", () => {
    const cfg = loadConfig(day({ "comfyume:gpu": { ...(dayValues()["comfyume:gpu"] as object), adopt: { id: "inst-1" } }, "comfyume:scratch": { lifetime: "month" } })) as DayConfig;
    expect(cfg.gpu.adopt).toEqual({ id: "inst-1" });
  });

  it("refuse an adopt without id or name, and an id that is not a Verda id", () => {
    expect(issueFor(month({ "comfyume:sfs": { adopt: {} } }), "comfyume:sfs.adopt").problem).toMatch(/needs id or name/);
    expect(issueFor(month({ "comfyume:sfs": { adopt: { id: "../x" } } }), "comfyume:sfs.adopt.id").problem).toMatch(/Verda id/);
  });

  it("refuse adopting a scratch or an instance while the scratch lives for a day, with the fix", () => {
    const scratch = issueFor(month({ "comfyume:scratch": { adopt: { id: "vol-1" } } }), "comfyume:scratch.adopt");
    expect(scratch.fix).toContain("scripts/pulumi config set --path 'comfyume:scratch.lifetime' month --stack workshop-month");
    const gpu = issueFor(day({ "comfyume:gpu": { ...(dayValues()["comfyume:gpu"] as object), adopt: { id: "inst-1" } } }), "comfyume:gpu.adopt");
    expect(gpu.problem).toMatch(/cannot get a fresh day scratch/);
    expect(gpu.fix).toContain("comfyume:scratch.lifetime' month");
  });
});
