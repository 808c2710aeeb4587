// A day stack with app.host = verda: the worker reaches Redis on the month's app host (the month's
// appRedisHost/appRedisPort outputs), not mello's address from restore.redisHost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { STACK_OUTPUTS, runProgram, unwrapSecret, type ProgramRun } from "../support/mock-program";

const APP_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAppAppAppAppAppAppAppAppAppAppAppAppAppApp";

const monthBefore = { ...STACK_OUTPUTS.month };
let run: ProgramRun;
beforeAll(async () => {
  Object.assign(STACK_OUTPUTS.month, {
    appHost: "verda",
    appRedisHost: "100.64.0.20",
    appRedisPort: 6380,
    appIp: "203.0.113.20",
    appHostKey: APP_HOST_KEY,
    appDataDir: "/home/dev/comfyume-v1/data",
    appDataDirs: ["user_data", "outputs"],
  });
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

  it("backs up the app host's users' files to R2 with the nightly destroy (verified, host key pinned)", () => {
    const hook = run.byName("app-files-backup-before-delete");
    const del = String(hook.inputs.delete);
    expect(del).toMatch(/backup-mello\.sh' --r2-endpoint '\S+' --data-dir '\/home\/dev\/comfyume-v1\/data' --dirs 'user_data,outputs' --bucket 'comfyume-user-files-backups' --prefix 'app'/);
    const connection = unwrapSecret(hook.inputs.connection) as { host: string; hostKey: string };
    expect(connection.host).toBe("203.0.113.20");
    expect(connection.hostKey).toBe(APP_HOST_KEY);
    expect(hook.opts.retainOnDelete).toBeFalsy();
  });
});

describe("withAppRedis", () => {
  it("declares nothing on mello: mello holds no users' files, so its nightly hook would fail every destroy", () => {
    const names = run.resources.map((r) => r.name);
    expect(names).toContain("worker-backup-before-delete");
    expect(names.filter((n) => n.includes("mello"))).toEqual([]);
    const hook = run.byName("worker-backup-before-delete");
    expect(String(hook.inputs.delete)).toContain("backup-mello.sh");
  });

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
