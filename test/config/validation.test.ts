// Every bad setting gives one clear message naming the key and the fix; all are reported at once.
import { describe, expect, it } from "vitest";
import { ConfigError, formatIssues, loadConfig, validateConfig, type ConfigIssue, type RawConfig } from "../../infra/config";
import {
  DAY_SECRET_KEYS,
  IDLE_SECRET_KEYS,
  MONTH_SECRET_KEYS,
  SECRETS,
  dayValues,
  idleValues,
  monthValues,
  raw,
} from "../support/fixtures";

function issuesOf(r: RawConfig): ConfigIssue[] {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  return result.issues;
}

function only(r: RawConfig): ConfigIssue {
  const issues = issuesOf(r);
  expect(issues, formatIssues(r.stack, issues)).toHaveLength(1);
  return issues[0];
}

const idle = (patch: Record<string, unknown> = {}, secrets = IDLE_SECRET_KEYS) => raw("idle", { ...idleValues(), ...patch }, secrets);
const month = (patch: Record<string, unknown> = {}, secrets = MONTH_SECRET_KEYS) =>
  raw("workshop-month", { ...monthValues(), ...patch }, secrets);
const day = (patch: Record<string, unknown> = {}, secrets = DAY_SECRET_KEYS, stack = "workshop-day") =>
  raw(stack, { ...dayValues(stack.includes("testing") ? "testing" : "workshop"), ...patch }, secrets);

describe("valid configurations", () => {
  it.each([
    ["idle", () => idle()],
    ["testing-month", () => raw("testing-month", monthValues("testing"), MONTH_SECRET_KEYS)],
    ["workshop-month", () => month()],
    ["testing-day", () => day({}, DAY_SECRET_KEYS, "testing-day")],
    ["workshop-day", () => day()],
  ])("%s validates", (_phase, make) => {
    const result = validateConfig(make());
    expect(result.ok ? [] : result.issues).toEqual([]);
  });

  it("applies defaults and resolves stack references", () => {
    const cfg = loadConfig(day({}, DAY_SECRET_KEYS, "testing-day"));
    expect(cfg.layer).toBe("day");
    if (cfg.layer !== "day") return;
    expect(cfg.gpu.instanceType).toBe("CPU.4V.16G");
    expect(cfg.gpu.hostname).toBe("comfyume-testing-day");
    expect(cfg.stackRefs).toEqual({ idle: "organization/comfyume/idle", month: "organization/comfyume/testing-month" });
    expect(cfg.paths).toEqual({ sfsMount: "/mnt/sfs", scratchMount: "/mnt/scratch", scriptsDir: "/opt/comfyume", melloScriptsDir: "/opt/comfyume/stacks/testing-day", restoreLog: "/var/log/comfyume/restore-instance.last.log" });
    expect(cfg.scratch.lifetime).toBe("day");
  });

  it("accepts a prefixed stack name for the phase and configurable stack references", () => {
    const r = raw("rehearsal-workshop-day", { ...dayValues(), "comfyume:stackRefs": { idle: "rehearsal-idle", month: "rehearsal-workshop-month" } }, DAY_SECRET_KEYS);
    const cfg = loadConfig(r);
    expect(cfg.stackRefs).toEqual({ idle: "organization/comfyume/rehearsal-idle", month: "organization/comfyume/rehearsal-workshop-month" });
  });

  it("keeps secrets out of the printed configuration", () => {
    const cfg = loadConfig(day());
    const printed = JSON.stringify(cfg) + String((cfg as { redisPassword?: unknown }).redisPassword);
    for (const value of [SECRETS.redisPassword, SECRETS.tailscaleAuthKey, SECRETS.sshPrivateKey]) expect(printed).not.toContain(value);
  });
});

describe("one clear error per bad setting", () => {
  it("1. phase missing", () => {
    const values = idleValues();
    delete values["comfyume:phase"];
    const i = only(raw("idle", values, IDLE_SECRET_KEYS));
    expect(i.key).toBe("comfyume:phase");
    expect(i.problem).toBe("is missing");
    expect(i.fix).toBe("scripts/pulumi config set 'comfyume:phase' idle --stack idle");
  });

  it("2. phase not a phase", () => {
    const i = only(idle({ "comfyume:phase": "weekend" }));
    expect(i.problem).toMatch(/^'weekend' is not a phase; use one of idle, testing-month, workshop-month, testing-day, workshop-day$/);
  });

  it("3. phase of another stack", () => {
    const i = only(raw("workshop-day", { ...dayValues("testing") }, DAY_SECRET_KEYS));
    expect(i.key).toBe("comfyume:phase");
    expect(i.problem).toBe("is 'testing-day' but the stack is 'workshop-day': a stack runs the phase in its name");
  });

  it("4. unknown top-level setting (typo)", () => {
    const i = only(day({ "comfyume:gpuu": { instanceType: "1A100.22V" } }));
    expect(i.key).toBe("comfyume:gpuu");
    expect(i.problem).toMatch(/^is not a known setting \(known: .*gpu.*\)$/);
    expect(i.fix).toBe("scripts/pulumi config rm 'comfyume:gpuu' --stack workshop-day");
  });

  it("5. unknown nested setting", () => {
    const i = only(day({ "comfyume:gpu": { instanceType: "1A100.22V", image: "ubuntu", instanceTyp: "x" } }));
    expect(i.key).toBe("comfyume:gpu.instanceTyp");
    expect(i.fix).toBe("scripts/pulumi config rm --path 'comfyume:gpu.instanceTyp' --stack workshop-day");
  });

  it("6. workshop-day without an instance type", () => {
    const i = only(day({ "comfyume:gpu": { image: "ubuntu-24.04-cuda-12.8-open-docker" } }));
    expect(i.key).toBe("comfyume:gpu.instanceType");
    expect(i.problem).toBe("is missing: the workshop day's Verda instance type");
    expect(i.fix).toBe("scripts/pulumi config set --path 'comfyume:gpu.instanceType' 1A100.22V --stack workshop-day");
  });

  it("7. a GPU type on testing-day", () => {
    const i = only(day({ "comfyume:gpu": { instanceType: "1H100.80S.22V" } }, DAY_SECRET_KEYS, "testing-day"));
    expect(i.key).toBe("comfyume:gpu.instanceType");
    expect(i.problem).toContain("GPU type '1H100.80S.22V' on testing-day");
    expect(i.fix).toContain("CPU.4V.16G");
  });

  it("8. malformed instance type", () => {
    const i = only(day({ "comfyume:gpu": { instanceType: "big gpu", image: "x" } }));
    expect(i.key).toBe("comfyume:gpu.instanceType");
    expect(i.problem).toBe("must be a Verda instance type such as 1A100.22V or CPU.4V.16G");
  });

  it("9. a comfyume secret set in plaintext", () => {
    const i = only(day({}, DAY_SECRET_KEYS.filter((k) => k !== "comfyume:redisPassword")));
    expect(i.key).toBe("comfyume:redisPassword");
    expect(i.problem).toBe("is a secret but is set in plaintext");
    expect(i.fix).toBe(
      "scripts/pulumi config rm 'comfyume:redisPassword' --stack workshop-day && scripts/pulumi config set --secret 'comfyume:redisPassword' --stack workshop-day < value-file",
    );
  });

  it("10. a provider token set in plaintext", () => {
    const i = only(idle({}, IDLE_SECRET_KEYS.filter((k) => k !== "hcloud:token")));
    expect(i.key).toBe("hcloud:token");
    expect(i.problem).toBe("is a secret but is set in plaintext");
  });

  it("11. a secret-looking field inside a plaintext object", () => {
    const mello = { ...(idleValues()["comfyume:mello"] as object), password: "hunter2" };
    const issues = issuesOf(idle({ "comfyume:mello": mello }));
    expect(issues.map((x) => `${x.key}: ${x.problem}`)).toContain("comfyume:mello.password: looks like a secret inside a plaintext setting");
  });

  it("12. a private key pasted into a plaintext setting", () => {
    const i = issuesOf(day({ "comfyume:gpu": { instanceType: "1A100.22V", image: "x", description: SECRETS.sshPrivateKey } }))[0];
    expect(i.key).toBe("comfyume:gpu");
    expect(i.problem).toBe("is a secret but is set in plaintext");
  });

  it("13. a required secret missing", () => {
    const values = dayValues();
    delete values["comfyume:tailscaleAuthKey"];
    const i = only(raw("workshop-day", values, DAY_SECRET_KEYS));
    expect(i.key).toBe("comfyume:tailscaleAuthKey");
    expect(i.problem).toBe("is missing: a Tailscale auth key for `tailscale up --authkey`");
    expect(i.fix).toBe("scripts/pulumi config set --secret 'comfyume:tailscaleAuthKey' --stack workshop-day < tailscale-authkey.txt");
  });

  it("14. a malformed secret, without echoing it", () => {
    const i = only(day({ "comfyume:tailscaleAuthKey": "not-a-key-value-xyz" }));
    expect(i.problem).toBe("does not look like a Tailscale auth key (tskey-...)");
    expect(JSON.stringify(i)).not.toContain("not-a-key-value-xyz");
  });

  it("15. a malformed SSH private key", () => {
    const i = only(day({ "comfyume:sshPrivateKey": "ssh-ed25519 AAAA public-key-by-mistake" }));
    expect(i.key).toBe("comfyume:sshPrivateKey");
    expect(i.problem).toMatch(/^is not a PEM\/OpenSSH private key/);
  });

  it("16. idle without mello", () => {
    const values = idleValues();
    delete values["comfyume:mello"];
    const i = only(raw("idle", values, IDLE_SECRET_KEYS));
    expect(i.key).toBe("comfyume:mello");
    expect(i.problem).toBe("is missing (the idle stack needs it)");
  });

  it("17. an unknown mello mode", () => {
    const i = only(idle({ "comfyume:mello": { mode: "aws", address: "x", hostKey: "y" } }));
    expect(i.key).toBe("comfyume:mello.mode");
    expect(i.problem).toBe("mode must be 'hetzner' (adopt the Hetzner server) or 'external' (address and SSH user only)");
    expect(i.fix).toBe("scripts/pulumi config set --path 'comfyume:mello.mode' hetzner --stack idle");
  });

  it("18. an external mello without address, and a bad host key", () => {
    const issues = issuesOf(idle({ "comfyume:mello": { mode: "external", hostKey: "not a key" } }));
    expect(issues.map((x) => `${x.key}: ${x.problem}`)).toEqual([
      "comfyume:mello.address: is missing (mello's SSH address)",
      "comfyume:mello.hostKey: must be an OpenSSH public key line such as 'ssh-ed25519 AAAAC3Nz... comment'",
    ]);
  });

  it("19. a DNS TTL Cloudflare refuses", () => {
    const mello = { ...(idleValues()["comfyume:mello"] as Record<string, unknown>), dns: { zoneId: "fedcba9876543210fedcba9876543210", name: "x.example", ttl: 30 } };
    const i = only(idle({ "comfyume:mello": mello }));
    expect(i.key).toBe("comfyume:mello.dns.ttl");
    expect(i.problem).toBe("must be 1 (automatic) or 60-86400 seconds");
  });

  it("20. an SFS of size zero", () => {
    const i = only(month({ "comfyume:sfs": { sizeGb: 0 } }));
    expect(i.key).toBe("comfyume:sfs.sizeGb");
    expect(i.problem).toBe("must be at least 1");
    expect(i.fix).toBe("scripts/pulumi config set --path 'comfyume:sfs.sizeGb' 220 --stack workshop-month");
  });

  it("21. an unknown scratch lifetime", () => {
    const i = only(month({ "comfyume:scratch": { lifetime: "week" } }));
    expect(i.key).toBe("comfyume:scratch.lifetime");
    expect(i.problem).toBe("must be 'day' (fresh scratch each day) or 'month' (kept for the month)");
  });

  it("22. seeding without the SSH key", () => {
    const values = monthValues();
    delete values["comfyume:sshPrivateKey"];
    const i = only(raw("workshop-month", values, MONTH_SECRET_KEYS));
    expect(i.key).toBe("comfyume:sshPrivateKey");
    expect(i.problem).toMatch(/^is missing: the admin's SSH private key/);
  });

  it("23. existing buckets without credentials or endpoint", () => {
    const issues = issuesOf(idle({ "comfyume:backups": { mode: "existing" } }));
    expect(issues.map((x) => x.key).sort()).toEqual(["comfyume:backups.endpoint", "comfyume:r2AccessKeyId", "comfyume:r2SecretAccessKey"]);
  });

  it("24. a bucket name R2 refuses", () => {
    const i = only(idle({ "comfyume:backups": { mode: "managed", accountId: "0123456789abcdef0123456789abcdef", buckets: { models: "Models_Bucket" } } }));
    expect(i.key).toBe("comfyume:backups.buckets.models");
    expect(i.problem).toBe("must be an R2 bucket name: 3-63 lowercase letters, digits and '-'");
  });

  it("25. an object setting given as a plain string", () => {
    const i = only(day({ "comfyume:gpu": "1A100.22V" }));
    expect(i.key).toBe("comfyume:gpu");
    expect(i.problem).toBe("must be an object; set its fields one by one");
  });

  it("26. Verda credentials missing", () => {
    const values = dayValues();
    delete values["verda:clientId"];
    const i = only(raw("workshop-day", values, DAY_SECRET_KEYS));
    expect(i.key).toBe("verda:clientId");
    expect(i.fix).toContain("VERDA_CLIENT_ID");
  });

  it("27. the restore addresses missing", () => {
    const issues = issuesOf(day({ "comfyume:restore": {} }));
    expect(issues.map((x) => x.key)).toEqual(["comfyume:restore.expectedTailscaleIp", "comfyume:restore.redisHost"]);
  });

  it("28. Hetzner mello without an hcloud token", () => {
    const values = idleValues();
    delete values["hcloud:token"];
    const i = only(raw("idle", values, IDLE_SECRET_KEYS));
    expect(i.key).toBe("hcloud:token");
    expect(i.fix).toContain("HCLOUD_TOKEN");
  });

  it("29. a wrong type nested deep (lifecycle days as text)", () => {
    const i = only(idle({ "comfyume:backups": { mode: "managed", accountId: "0123456789abcdef0123456789abcdef", lifecycle: { cache: { maxAgeDays: "ninety" } } } }));
    expect(i.key).toBe("comfyume:backups.lifecycle.cache.maxAgeDays");
    expect(i.problem).toBe("must be a whole number");
  });

  it("30. a bad host-script environment name", () => {
    const i = only(day({ "comfyume:hostEnv": { "comfyume-root": "/tmp/x" } }));
    expect(i.key).toMatch(/^comfyume:hostEnv/);
    expect(i.problem).toContain("environment variable names");
  });

  it("31. a cost-guard setting out of range (infra/money schemas)", () => {
    const i = only(day({ "comfyume:budget": { limit: -5 } }));
    expect(i.key).toBe("comfyume:budget.limit");
    expect(i.problem).toBe("must be at least 0");
  });
});

describe("all problems at once", () => {
  it("collects every issue and throws one ConfigError listing them with fixes", () => {
    const r = day({
      "comfyume:gpu": { instanceType: "1A100.22V", image: "x", spot: "maybe" },
      "comfyume:ssh": { port: 70000 },
      "comfyume:redisPassword": "tiny-pw",
    });
    let error: unknown;
    try {
      loadConfig(r);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.issues.map((i) => i.key).sort()).toEqual([
      "comfyume:gpu.spot",
      "comfyume:redisPassword",
      "comfyume:ssh.port",
    ]);
    expect(e.message).toMatch(/^Configuration of stack 'workshop-day' has 3 problems; nothing was created:/);
    expect(e.message).toContain("  - comfyume:ssh.port: must be at most 65535\n      fix: scripts/pulumi config set --path 'comfyume:ssh.port' 22 --stack workshop-day");
    expect(e.message).not.toContain("tiny-pw");
  });
});

describe("watchdog on the idle stack", () => {
  it("needs the SSH private key secret to install the watchdog on mello", () => {
    const issue = only(idle({ "comfyume:watchdog": { enabled: true } }));
    expect(issue.key).toBe("comfyume:sshPrivateKey");
    expect(issue.fix).toContain("--secret");
  });
});
