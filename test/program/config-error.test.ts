// A bad configuration stops the program before any resource is declared.
import * as pulumi from "@pulumi/pulumi";
import { expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";

it("throws one RunError listing every problem, and declares nothing", async () => {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...dayValues(), "comfyume:gpu": { image: "x" }, "comfyume:restore": {} })) {
    values[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  pulumi.runtime.setAllConfig(values, DAY_SECRET_KEYS.filter((k) => k !== "comfyume:redisPassword"));
  const registered: string[] = [];
  await pulumi.runtime.setMocks(
    { newResource: (a) => (registered.push(a.name), { id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs },
    "comfyume",
    "workshop-day",
    false,
  );
  const { buildProgram } = await import("../../infra/program");
  let error: unknown;
  try {
    await buildProgram();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(pulumi.RunError);
  const message = (error as Error).message;
  expect(message).toMatch(/^Configuration of stack 'workshop-day' has 4 problems; nothing was created:/);
  for (const key of ["comfyume:redisPassword", "comfyume:gpu.instanceType", "comfyume:restore.expectedTailscaleIp", "comfyume:restore.redisHost"]) {
    expect(message).toContain(`  - ${key}: `);
  }
  await new Promise((r) => setTimeout(r, 50));
  expect(registered).toEqual([]);
});
