// Phase `workshop-month` with app.host = verda and app.adopt (docs/adopting.md, "The app instance"): the
// running app instance (the workshop's quiet-city-purrs-fin-01) is adopted, never created, replaced or
// deleted, and the AppHost chain on it never restores over its live data: share, scripts, toolchain, mount
// with the marker check and a check that the app answers; the backup-before-delete hook stays.
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig, validateConfig, type MonthConfig } from "../../infra/config";
import { instanceProvider, type InstanceInputs, type InstanceOutputs } from "../../infra/providers";
import { MONTH_SECRET_KEYS, SECRETS, monthValues, raw } from "../support/fixtures";
import { REMOTE_COMMAND, isVerda, runProgram, type ProgramRun } from "../support/mock-program";

const APP_ID = "5f1c2a7e-0b9d-4c1e-9a55-quietcity01";
const appConfig = (adopt: object | undefined) => ({
  host: "verda",
  hostname: "quiet-city-purrs-fin-01",
  expectedTailscaleIp: "100.64.0.20",
  services: ["redis", "queue-manager"],
  composeFiles: ["docker-compose.yml"],
  ...(adopt ? { adopt } : {}),
});
const monthWithApp = (adopt: object | undefined) => ({
  ...monthValues("workshop", false),
  "comfyume:redisPassword": SECRETS.redisPassword,
  "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey,
  "comfyume:app": appConfig(adopt),
});
const SECRET_KEYS = [...MONTH_SECRET_KEYS, "comfyume:redisPassword", "comfyume:tailscaleAuthKey"];

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("workshop-month", monthWithApp({ id: APP_ID }), SECRET_KEYS);
});

const command = (name: string) => run.byName(name).inputs as { create?: string; delete?: string };
const deps = (name: string) => ((run.byName(name).opts.dependsOn ?? []) as { __name?: string }[]).map((d) => d.__name);

describe("month adopting the running app instance (app.adopt)", () => {
  it("hands app.adopt to the month layer", () => {
    const cfg = loadConfig(raw("workshop-month", monthWithApp({ name: "quiet-city-purrs-fin-01" }), SECRET_KEYS)) as MonthConfig;
    expect(cfg.app.host === "verda" && cfg.app.adopt).toEqual({ name: "quiet-city-purrs-fin-01" });
  });

  it("adopts the instance by id: protected, retained on delete, every difference named with its comfyume:app.* fix", () => {
    const inst = run.byName("app-host-instance");
    expect(isVerda(inst, "Instance")).toBe(true);
    expect(inst.opts.protect).toBe(true);
    expect(inst.opts.retainOnDelete).toBe(true);
    // The provider sees every edit (no ignoreChanges on what adoption compares), so it reports each one.
    expect(inst.opts.ignoreChanges).toEqual(["startupScriptId"]);
    expect(inst.inputs.adopt).toMatchObject({
      id: APP_ID,
      stack: "workshop-month",
      what: "the app instance",
      settings: { instanceType: "comfyume:app.instanceType", hostname: "comfyume:app.hostname", locationCode: "comfyume:app.location", image: "comfyume:app.image", adopt: "comfyume:app.adopt" },
    });
  });

  it("a config edit on an adopted app instance never plans a replace", async () => {
    const inst = run.byName("app-host-instance");
    const inputs = inst.inputs as unknown as InstanceInputs;
    // As the provider recorded it at adoption (outputs carry adopted: true), then the config is edited.
    const outs = { ...inputs, instanceId: APP_ID, status: "running", adopted: true } as unknown as InstanceOutputs;
    const edited = { ...inputs, instanceType: "CPU.16V.64G", image: "ubuntu-22.04", hostname: "another-host", locationCode: "FIN-02", osVolume: { name: "x", size: 500 } };
    const diff = await instanceProvider.diff!(APP_ID, outs, edited);
    expect(diff.replaces ?? []).toEqual([]);
    expect(diff.changes).toBe(false);
    expect(diff.deleteBeforeReplace ?? false).toBe(false);
  });

  it("adopting the app host never restores over it: no restore, no start; mount with the marker check and a check that the app answers", () => {
    expect(run.named("app-host-restore")).toEqual([]);
    expect(run.named("app-host-start-app")).toEqual([]);
    expect(command("app-host-mount-sfs").create).toMatch(/mount-sfs\.sh.*--sfs-id 'vol-shared-fs-sfs'/);
    const check = command("app-host-check-app").create!;
    expect(check).toContain("start-app.sh");
    expect(check).toContain("--check-only");
    expect(check).toContain("--service 'redis' --service 'queue-manager'");
    expect(deps("app-host-check-app")).toContain("app-host-toolchain");
    expect(deps("app-host-backup-cron")).toContain("app-host-check-app");
  });

  it("keeps the backup-before-delete hook: verified backups before any delete, though the instance is retained", () => {
    const hook = run.byName("app-host-backup-before-delete");
    expect(hook.type).toBe(REMOTE_COMMAND);
    expect(command("app-host-backup-before-delete").delete).toContain("backup-instance.sh");
    expect(deps("app-host-backup-before-delete")).toEqual(expect.arrayContaining(["app-host-instance", "app-host-sfs-share"]));
  });

  it("refuses app.adopt while the app runs on mello, naming the setting and the fix, before anything is declared", () => {
    const values = { ...monthValues("workshop", false), "comfyume:app": { host: "mello", adopt: { id: APP_ID } } };
    const result = validateConfig(raw("workshop-month", values, MONTH_SECRET_KEYS));
    if (result.ok) throw new Error("expected app.adopt with app.host mello to be rejected");
    const issue = result.issues.find((i) => i.key === "comfyume:app.host");
    expect(issue?.problem).toMatch(/comfyume:app\.adopt/);
    expect(issue?.fix).toContain("scripts/pulumi config set --path 'comfyume:app.host'");
  });
});
