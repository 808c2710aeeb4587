// A day stack with app.host = verda: the worker reaches Redis on the month's app host (the month's
// appRedisHost/appRedisPort outputs), not mello's address from restore.redisHost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { STACK_OUTPUTS, runProgram, type ProgramRun } from "../support/mock-program";

const monthBefore = { ...STACK_OUTPUTS.month };
let run: ProgramRun;
beforeAll(async () => {
  Object.assign(STACK_OUTPUTS.month, { appHost: "verda", appRedisHost: "100.64.0.20", appRedisPort: 6380 });
  run = await runProgram(
    "workshop-day",
    { ...dayValues(), "comfyume:app": { host: "verda" }, "comfyume:restore": { expectedTailscaleIp: "100.64.0.12" } },
    DAY_SECRET_KEYS,
  );
});
afterAll(() => {
  for (const k of Object.keys(STACK_OUTPUTS.month)) delete STACK_OUTPUTS.month[k];
  Object.assign(STACK_OUTPUTS.month, monthBefore);
});

describe("day with the app on the month's app host", () => {
  it("restores the worker with Redis at the app host's address and port", () => {
    const restore = String(run.byName("worker-restore").inputs.create);
    expect(restore).toContain("--redis-host '100.64.0.20'");
    expect(restore).toContain("--redis-port '6380'");
    expect(restore).not.toContain("100.64.0.2'");
  });
});

describe("withAppRedis", () => {
  it("stops with the fix when the month has no app host", async () => {
    const { withAppRedis } = await import("../../infra/phases/day");
    const { loadConfig } = await import("../../infra/config");
    const { raw } = await import("../support/fixtures");
    const cfg = loadConfig(raw("workshop-day", { ...dayValues(), "comfyume:app": { host: "verda" }, "comfyume:restore": { expectedTailscaleIp: "100.64.0.12" } }, DAY_SECRET_KEYS));
    const month = { getOutputDetails: async () => ({ value: undefined }) } as unknown as import("@pulumi/pulumi").StackReference;
    await expect(withAppRedis(cfg as never, month)).rejects.toThrow(/exports no appRedisHost.*scripts\/pulumi up --stack workshop-month/);
  });
});

describe("a day on mello whose month runs the app host", () => {
  it("keeps restore.redisHost and warns with the fix", async () => {
    const pulumi = await import("@pulumi/pulumi");
    const { withAppRedis } = await import("../../infra/phases/day");
    const { loadConfig } = await import("../../infra/config");
    const { raw } = await import("../support/fixtures");
    const cfg = loadConfig(raw("workshop-day", dayValues(), DAY_SECRET_KEYS));
    const warnings: string[] = [];
    const warn = pulumi.log.warn;
    (pulumi.log as { warn: (m: string) => Promise<void> }).warn = async (m: string) => void warnings.push(m);
    try {
      const month = { getOutputDetails: async (k: string) => ({ value: k === "appHost" ? "verda" : undefined }) } as unknown as import("@pulumi/pulumi").StackReference;
      const out = await withAppRedis(cfg as never, month);
      expect((out as { restore: { redisHost: string } }).restore.redisHost).toBe("100.64.0.2");
    } finally {
      (pulumi.log as { warn: typeof warn }).warn = warn;
    }
    expect(warnings.join("\n")).toMatch(/appHost=verda.*app.host 'mello'.*config set --path 'comfyume:app.host' verda --stack workshop-day/s);
  });
});
