// A day stack checks, once and before declaring anything, every output it requires from the idle and month
// stacks: a missing one used to fail only when the resource needing it registered, in an update after the
// instance had been created (e.g. the backup hook's R2 endpoint), and in a preview with the engine's bare message.
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import { requiredDayOutputs } from "../../infra/phases/layer-outputs";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { STACK_OUTPUTS, runProgram } from "../support/mock-program";

const saved = { idle: { ...STACK_OUTPUTS.idle }, month: { ...STACK_OUTPUTS.month } };
afterEach(() => {
  for (const layer of ["idle", "month"] as const) {
    for (const k of Object.keys(STACK_OUTPUTS[layer])) delete STACK_OUTPUTS[layer][k];
    Object.assign(STACK_OUTPUTS[layer], saved[layer]);
  }
});

describe("the outputs a day stack requires from the layers below", () => {
  it("fails before declaring any resource, naming each missing output of both stacks and the fix", async () => {
    delete STACK_OUTPUTS.idle.r2Endpoint;
    delete STACK_OUTPUTS.idle.melloHostKey;
    delete STACK_OUTPUTS.month.sfsLocation;
    const { error, registered } = await failingRun();
    expect(error?.message).toContain("nothing was created");
    expect(error?.message).toContain("stack 'organization/comfyume/idle' exports no r2Endpoint, melloHostKey: run 'scripts/pulumi up --stack idle' first");
    expect(error?.message).toContain("stack 'organization/comfyume/workshop-month' exports no sfsLocation: run 'scripts/pulumi up --stack workshop-month' first");
    expect(registered).toEqual(["pulumi:pulumi:StackReference", "pulumi:pulumi:StackReference"]);
  });

  it("requires mello's outputs only with the app on mello, and the month's app host and scratch only when used", () => {
    const mello = requiredDayOutputs({ app: { host: "mello" }, scratch: { lifetime: "day" } } as never);
    expect(mello.idle).toContain("melloHostKey");
    expect(mello.month).toEqual(["sfsId", "sfsMountTarget", "sfsLocation"]);
    const verda = requiredDayOutputs({ app: { host: "verda" }, scratch: { lifetime: "month" } } as never);
    expect(verda.idle).not.toContain("melloAddress");
    expect(verda.month).toEqual(["sfsId", "sfsMountTarget", "sfsLocation", "scratchVolumeId", "appIp", "appHostKey", "appDataDir", "appDataDirs"]);
  });

  it("a serverless day whose month has no app host fails before anything, naming app.host as the fix", async () => {
    STACK_OUTPUTS.month.serverlessDeployments = ["comfyume-workshop-worker-h200-spot"];
    const values = {
      ...dayValues("workshop"),
      "comfyume:inference": "serverless",
      "comfyume:serverless": { image: "ghcr.io/ahelme/comfyume-worker:v1", deployments: [{ gpu: "H200", spot: true }] },
      "comfyume:app": { host: "verda" },
    };
    const { error, registered } = await failingRun(values);
    expect(error?.message).toContain("nothing was created");
    expect(error?.message).toMatch(/stack 'organization\/comfyume\/workshop-month' exports no appIp, appHostKey, appDataDir, appDataDirs: it declares no app host\. Set comfyume:app\.host: verda in its stack file too \(as in this one\), then run 'scripts\/pulumi up --stack workshop-month'/);
    expect(registered).toEqual(["pulumi:pulumi:StackReference", "pulumi:pulumi:StackReference"]);
  });

  it("passes with every output present (the program declares the worker)", async () => {
    const run = await runProgram("workshop-day", dayValues("workshop"), DAY_SECRET_KEYS);
    expect(run.byName("worker-instance").type).toBe("pulumi-nodejs:dynamic/verda:Instance");
  });
});

/** Builds the day program under bare mocks reading STACK_OUTPUTS; returns its error and the types it registered. */
async function failingRun(config: Record<string, unknown> = dayValues("workshop")): Promise<{ error?: Error; registered: string[] }> {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
  pulumi.runtime.setAllConfig(values, DAY_SECRET_KEYS);
  const registered: string[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered.push(a.type);
        const outputs = String(a.inputs.name).endsWith("idle") ? STACK_OUTPUTS.idle : STACK_OUTPUTS.month;
        return { id: `${a.name}-id`, state: a.type === "pulumi:pulumi:StackReference" ? { ...a.inputs, outputs } : a.inputs };
      },
      call: (a) => a.inputs,
    },
    "comfyume",
    "workshop-day",
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
