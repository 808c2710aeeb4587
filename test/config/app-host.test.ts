// `comfyume:app`: where the app runs (mello, or a Verda CPU instance the month owns), validated before
// anything is declared, each problem naming the setting and the command that fixes it.
import { describe, expect, it } from "vitest";
import { formatIssues, loadConfig, validateConfig, type DayConfig, type MonthConfig, type RawConfig } from "../../infra/config";
import { DAY_SECRET_KEYS, MONTH_SECRET_KEYS, SECRETS, dayValues, monthValues, raw } from "../support/fixtures";

const APP_MONTH_SECRETS = [...MONTH_SECRET_KEYS, "comfyume:redisPassword", "comfyume:tailscaleAuthKey"];
const verdaMonth = (app: Record<string, unknown> = {}, patch: Record<string, unknown> = {}) =>
  raw(
    "workshop-month",
    {
      ...monthValues("workshop", false),
      "comfyume:redisPassword": SECRETS.redisPassword,
      "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey,
      "comfyume:app": { host: "verda", expectedTailscaleIp: "100.64.0.20", ...app },
      ...patch,
    },
    APP_MONTH_SECRETS,
  );
const day = (patch: Record<string, unknown>) => raw("workshop-day", { ...dayValues(), ...patch }, DAY_SECRET_KEYS);

function issuesOf(r: RawConfig) {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  return result.issues;
}
function issueFor(r: RawConfig, key: string) {
  const issues = issuesOf(r);
  const issue = issues.find((i) => i.key === key);
  expect(issue, formatIssues(r.stack, issues)).toBeDefined();
  return issue!;
}

describe("comfyume:app", () => {
  it("defaults to mello, with no app host in the month", () => {
    const cfg = loadConfig(raw("workshop-month", monthValues(), MONTH_SECRET_KEYS)) as MonthConfig;
    expect(cfg.app.host).toBe("mello");
    const d = loadConfig(day({})) as DayConfig;
    expect(d.app.host).toBe("mello");
  });

  it("gives app.host=verda today's values as defaults", () => {
    const cfg = loadConfig(verdaMonth()) as MonthConfig;
    expect(cfg.app).toMatchObject({
      host: "verda",
      instanceType: "CPU.8V.32G",
      location: "FIN-01",
      image: "ubuntu-24.04",
      hostname: "comfyume-workshop-app",
      osVolumeSizeGb: 100,
      projectDir: "/home/dev/comfyume-v1",
      dataDir: "/home/dev/comfyume-v1/data",
      composeFiles: ["docker-compose.yml", "docker-compose.users.yml"],
      composeProfiles: ["container-nginx"],
      redisPort: 6379,
      backupSetName: "comfyume-workshop-app",
      expectedTailscaleIp: "100.64.0.20",
    });
    expect(cfg.app.host === "verda" && cfg.app.services).toEqual(["nginx", "redis", "queue-manager", "admin", ...Array.from({ length: 20 }, (_, i) => `user${String(i + 1).padStart(3, "0")}`)]);
    expect(cfg.redisPassword?.reveal()).toBe(SECRETS.redisPassword);
  });

  it("refuses a GPU instance type for the app host, naming the fix", () => {
    const issue = issueFor(verdaMonth({ instanceType: "1H100.80S.32V" }), "comfyume:app.instanceType");
    expect(issue.problem).toMatch(/GPU type '1H100.80S.32V'.*CPU instance/);
    expect(issue.fix).toContain("CPU.8V.32G");
  });

  it("refuses an unknown host with the two choices", () => {
    const issue = issueFor(verdaMonth({ host: "hetzner" }), "comfyume:app.host");
    expect(issue.problem).toMatch(/'mello'.*'verda'/);
  });

  it("needs the secrets and the tailnet address the app host restores with", () => {
    const r = raw("workshop-month", { ...monthValues("workshop", false), "comfyume:app": { host: "verda" } }, MONTH_SECRET_KEYS);
    const keys = issuesOf(r).map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining(["comfyume:redisPassword", "comfyume:tailscaleAuthKey", "comfyume:app.expectedTailscaleIp"]));
  });

  it("an adopted app host is only checked, never restored: no tailnet address needed unless Redis is reached over the tailnet", () => {
    const adopted = { adopt: { id: "app-inst-1" }, expectedTailscaleIp: undefined };
    const ok = loadConfig(verdaMonth({ ...adopted, redisReach: "instance-ip" })) as MonthConfig;
    expect(ok.app.host === "verda" && ok.app.expectedTailscaleIp).toBeFalsy();
    expect(ok.app.host).toBe("verda");
    expect(issueFor(verdaMonth(adopted), "comfyume:app.redisHost").problem).toMatch(/over the tailnet, but no app\.expectedTailscaleIp/);
  });

  it("refuses app-host settings while the app stays on mello", () => {
    const r = raw("workshop-month", { ...monthValues(), "comfyume:app": { instanceType: "CPU.8V.32G" } }, MONTH_SECRET_KEYS);
    const issue = issueFor(r, "comfyume:app.instanceType");
    expect(issue.problem).toMatch(/app.host is 'mello'/);
    expect(issue.fix).toContain("comfyume:app.host' verda");
  });

  it("refuses an empty backup bucket for the app's files and a relative compose file", () => {
    expect(issueFor(verdaMonth({ backupBucket: "X" }), "comfyume:app.backupBucket").problem).toMatch(/R2 bucket name/);
    expect(issueFor(verdaMonth({ composeFiles: [] }), "comfyume:app.composeFiles").problem).toMatch(/at least one/);
  });

  it("on a day stack: app.host=verda takes Redis from the month, so restore.redisHost is not needed and must not be set", () => {
    const ok = loadConfig(day({ "comfyume:app": { host: "verda" }, "comfyume:restore": { expectedTailscaleIp: "100.64.0.12" } })) as DayConfig;
    expect(ok.app.host).toBe("verda");
    const both = issueFor(day({ "comfyume:app": { host: "verda" } }), "comfyume:restore.redisHost");
    expect(both.problem).toMatch(/month's app host/);
    const monthOnly = issueFor(day({ "comfyume:app": { host: "verda", instanceType: "CPU.8V.32G" }, "comfyume:restore": { expectedTailscaleIp: "100.64.0.12" } }), "comfyume:app.instanceType");
    expect(monthOnly.problem).toMatch(/month stack/);
  });
});
