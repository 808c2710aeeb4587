// Each environment's own login key and Tailscale identity (idle: comfyume:environments): two
// environments never share one, and a day stack never takes another environment's.
import { describe, expect, it } from "vitest";
import { loadConfig, validateConfig, type ConfigIssue, type RawConfig } from "../../infra/config";
import { identityConflicts } from "../../infra/config/environments";
import { DAY_SECRET_KEYS, IDLE_SECRET_KEYS, dayValues, idleValues, raw } from "../support/fixtures";

const PROD_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProdProdProdProdProdProdProdProdProdProd prod@laptop";
const STAG_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStagStagStagStagStagStagStagStagStagStag staging@laptop";

function issuesOf(r: RawConfig): ConfigIssue[] {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  return result.issues;
}

describe("the environment registry (idle)", () => {
  const idle = (environments: unknown) => raw("idle", { ...idleValues(), "comfyume:environments": environments }, IDLE_SECRET_KEYS);

  it("holds one login key and one Tailscale identity per environment", () => {
    const cfg = loadConfig(
      idle({
        prod: { loginKey: PROD_PUB, loginKeyName: "PROD_comfyume", tailscale: { hostname: "comfyume-prod-day", ip: "100.64.0.12" } },
        staging: { loginKey: STAG_PUB, tailscale: { hostname: "comfyume-staging-day", ip: "100.64.0.13" } },
      }),
    );
    expect(cfg.layer === "idle" && Object.keys(cfg.environments)).toEqual(["prod", "staging"]);
  });

  it("refuses two environments with the same Tailscale address, naming both settings", () => {
    const issues = issuesOf(
      idle({
        prod: { tailscale: { hostname: "comfyume-prod-day", ip: "100.64.0.12" } },
        staging: { tailscale: { hostname: "comfyume-staging-day", ip: "100.64.0.12" } },
      }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0].key).toBe("comfyume:environments.staging.tailscale.ip");
    expect(issues[0].problem).toMatch(/same Tailscale address as comfyume:environments\.prod\.tailscale\.ip: environments prod and staging would share one identity/);
    expect(issues[0].fix).toContain("--stack idle");
  });

  it("refuses a shared login key or hostname, and a bad environment name", () => {
    const issues = issuesOf(
      idle({
        prod: { loginKey: PROD_PUB, tailscale: { hostname: "comfyume-worker" } },
        staging: { loginKey: PROD_PUB.replace("prod@laptop", "copy"), tailscale: { hostname: "comfyume-worker" } },
      }),
    );
    const text = issues.map((i) => `${i.key}: ${i.problem}`).join("\n");
    expect(text).toMatch(/comfyume:environments\.staging\.loginKey: is the same SSH login key as comfyume:environments\.prod\.loginKey/);
    expect(text).toMatch(/comfyume:environments\.staging\.tailscale\.hostname: is the same Tailscale hostname/);
    const named = issuesOf(idle({ Staging: {} }));
    expect(named.map((i) => `${i.key}: ${i.problem}`)).toEqual([expect.stringMatching(/^comfyume:environments\.Staging: environment 'Staging' breaks the rule: an environment name is/)]);
  });

  it("belongs to the idle stack only", () => {
    const issues = issuesOf(raw("prod-day", { ...dayValues(), "comfyume:phase": "prod-day", "comfyume:environments": { prod: {} } }, DAY_SECRET_KEYS));
    expect(issues.map((i) => i.key)).toEqual(["comfyume:environments"]);
  });
});

describe("a day stack's Tailscale identity against the registry", () => {
  const registry = { prod: { tailscaleHostname: "comfyume-prod-day", tailscaleIp: "100.64.0.12" }, staging: { tailscaleHostname: "comfyume-staging-day", tailscaleIp: "100.64.0.13" } };

  it("refuses another environment's address, naming both stacks' settings", () => {
    const problems = identityConflicts({ stack: "staging-day", environment: "staging", hostname: "comfyume-staging-day", tailscaleIp: "100.64.0.12", idleStack: "idle" }, registry);
    expect(problems.join("\n")).toMatch(
      /comfyume:restore\.expectedTailscaleIp of stack staging-day is '100\.64\.0\.12', which comfyume:environments\.prod\.tailscale\.ip of stack idle gives to environment prod/,
    );
  });

  it("accepts its own identity, and a registry without entries", () => {
    expect(identityConflicts({ stack: "prod-day", environment: "prod", hostname: "comfyume-prod-day", tailscaleIp: "100.64.0.12", idleStack: "idle" }, registry)).toEqual([]);
    expect(identityConflicts({ stack: "workshop-day", environment: "workshop", hostname: "comfyume-workshop-day", tailscaleIp: "100.64.0.12", idleStack: "idle" }, undefined)).toEqual([]);
  });
});

