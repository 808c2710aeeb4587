// Each environment's own login key and Tailscale identity through the stacks: the idle stack registers
// them, a day stack takes its environment's key and refuses another environment's identity.
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { DAY_SECRET_KEYS, IDLE_SECRET_KEYS, MONTH_SECRET_KEYS, dayValues, idleValues, monthValues } from "../support/fixtures";
import { generateKeyPair } from "../support/ssh-host";
import { STACK_OUTPUTS, plaintextOutputs, promiseOf, runProgram } from "../support/mock-program";

const PROD_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProdProdProdProdProdProdProdProdProdProd prod@laptop";
const STAG_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStagStagStagStagStagStagStagStagStagStag staging@laptop";
const idleOutputs = { ...STACK_OUTPUTS.idle };
afterEach(() => {
  STACK_OUTPUTS.idle = { ...idleOutputs };
});

const prodDay = (env: string, patch: Record<string, unknown> = {}) => ({ ...dayValues(), "comfyume:phase": `${env}-day`, ...patch });

describe("idle registers each environment", () => {
  it("holds one login key per environment, named after it, and publishes no key material", async () => {
    const run = await runProgram(
      "idle",
      {
        ...idleValues(),
        "comfyume:environments": {
          prod: { loginKey: PROD_PUB, loginKeyName: "PROD_comfyume", tailscale: { hostname: "comfyume-prod-day", ip: "100.64.0.12" } },
          staging: { loginKey: STAG_PUB, tailscale: { ip: "100.64.0.13" } },
        },
      },
      IDLE_SECRET_KEYS,
    );
    expect(run.byName("verda-ssh-env-prod").inputs).toMatchObject({ name: "PROD_comfyume", publicKey: PROD_PUB });
    expect(run.byName("verda-ssh-env-staging").inputs).toMatchObject({ name: "comfyume-staging-login", publicKey: STAG_PUB });
    expect(await promiseOf(run.outputs.verdaSshKeyIdsByEnvironment)).toEqual({
      prod: ["key-verda-ssh-env-prod", "key-verda-ssh-mello"],
      staging: ["key-verda-ssh-env-staging", "key-verda-ssh-mello"],
    });
    expect(await promiseOf(run.outputs.environments)).toEqual({
      prod: { loginKeyName: "PROD_comfyume", loginKeyFingerprint: expect.stringMatching(/^SHA256:/), tailscaleHostname: "comfyume-prod-day", tailscaleIp: "100.64.0.12" },
      staging: { loginKeyName: "comfyume-staging-login", loginKeyFingerprint: expect.stringMatching(/^SHA256:/), tailscaleIp: "100.64.0.13" },
    });
    expect(await plaintextOutputs(run.outputs)).not.toContain("AAAAC3NzaC1lZDI1NTE5AAAAIProd");
  });

  it("adds nothing for a stack without environments (existing idle stacks are unchanged)", async () => {
    const run = await runProgram("idle", idleValues(), IDLE_SECRET_KEYS);
    expect(run.named("verda-ssh-env-")).toEqual([]);
    expect(Object.keys(run.outputs)).not.toContain("environments");
  });
});

describe("a day stack of an environment", () => {
  it("puts its environment's own login key (and mello's) on the instance", async () => {
    STACK_OUTPUTS.idle = { ...idleOutputs, verdaSshKeyIdsByEnvironment: { prod: ["key-prod", "key-mello"] }, environments: { prod: { tailscaleIp: "100.64.0.12" } } };
    const run = await runProgram("prod-day", prodDay("prod"), DAY_SECRET_KEYS);
    expect(run.byName("worker-instance").inputs.sshKeyIds).toEqual(["key-prod", "key-mello"]);
  });

  it("keeps the shared admin and mello keys for an environment without its own", async () => {
    STACK_OUTPUTS.idle = { ...idleOutputs, verdaSshKeyIdsByEnvironment: { prod: ["key-prod", "key-mello"] } };
    const run = await runProgram("workshop-day", dayValues(), DAY_SECRET_KEYS);
    expect(run.byName("worker-instance").inputs.sshKeyIds).toEqual(["key-admin", "key-mello"]);
  });

  it("fails before declaring anything when it would take another environment's Tailscale address", async () => {
    const { error, registered } = await failingRun("staging-day", prodDay("staging"), { prod: { tailscaleIp: "100.64.0.12" }, staging: { tailscaleIp: "100.64.0.13" } });
    expect(error).toBeInstanceOf(pulumi.RunError);
    expect(error?.message).toMatch(/Environment 'staging' of stack 'staging-day' is not its own; nothing was created/);
    expect(error?.message).toMatch(/comfyume:restore\.expectedTailscaleIp of stack staging-day is '100\.64\.0\.12', which comfyume:environments\.prod\.tailscale\.ip of stack idle gives to environment prod/);
    // Only the reads of the layers below: no resource was declared.
    expect(registered.filter((t) => t !== "pulumi:pulumi:StackReference")).toEqual([]);
  });

  it("fails before declaring anything when its SSH private key is not its environment's login key", async () => {
    const prod = generateKeyPair();
    const staging = generateKeyPair();
    const registry = { staging: { loginKeyName: "comfyume-staging-login", loginKeyFingerprint: fingerprintOf(staging.publicKey) } };
    const { error, registered } = await failingRun("staging-month", { ...monthValues(), "comfyume:phase": "staging-month", "comfyume:sshPrivateKey": prod.privateKey }, registry, MONTH_SECRET_KEYS);
    expect(error?.message).toMatch(/comfyume:sshPrivateKey of stack staging-month \(SHA256:.*\) is not the private half of comfyume:environments\.staging\.loginKey of stack idle/);
    expect(error?.message).not.toContain(prod.privateKey.split("\n")[1]);
    expect(registered.filter((t) => t !== "pulumi:pulumi:StackReference")).toEqual([]);
    // With its own key the same stack builds (its loader gets the environment's key ids).
    STACK_OUTPUTS.idle = { ...idleOutputs, environments: registry, verdaSshKeyIdsByEnvironment: { staging: ["key-staging", "key-mello"] } };
    const ok = await runProgram("staging-month", { ...monthValues(), "comfyume:phase": "staging-month", "comfyume:sshPrivateKey": staging.privateKey }, MONTH_SECRET_KEYS);
    expect(ok.byName("shared-fs-loader").inputs.sshKeyIds).toEqual(["key-staging", "key-mello"]);
  });
});

const fingerprintOf = (publicKey: string) => "SHA256:" + createHash("sha256").update(Buffer.from(publicKey.split(" ")[1], "base64")).digest("base64").replace(/=+$/, "");

/** Builds the program under bare mocks whose idle stack publishes `registry`; returns its error and what it registered. */
async function failingRun(stack: string, config: Record<string, unknown>, registry: unknown, secretKeys = DAY_SECRET_KEYS): Promise<{ error?: Error; registered: string[] }> {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
  pulumi.runtime.setAllConfig(values, secretKeys);
  const registered: string[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered.push(a.type);
        const outputs = String(a.inputs.name).endsWith("idle") ? { ...idleOutputs, environments: registry } : STACK_OUTPUTS.month;
        return { id: `${a.name}-id`, state: a.type === "pulumi:pulumi:StackReference" ? { ...a.inputs, outputs } : a.inputs };
      },
      call: (a) => a.inputs,
    },
    "comfyume",
    stack,
    false,
  );
  const { buildProgram } = await import("../../infra/program");
  const error = await buildProgram(undefined, "preview").then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  await new Promise((r) => setTimeout(r, 50));
  return { error, registered };
}
