// The mello watchdog: real bash, a fake day stack (files), a fake teardown, the queue length from
// a file, and a loopback HTTP server standing in for the ntfy webhook. WATCHDOG_NOW fixes the clock.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { run, tmp, write } from "../scripts/helpers";

interface Hook {
  body: string;
  priority: string;
  title: string;
}

const at = (hhmm: string, day = "2026-11-23") => String(Date.parse(`${day}T${hhmm}:00Z`) / 1000);

describe("watchdog.sh", () => {
  let server: Server;
  let url: string;
  let hooks: Hook[] = [];
  let dir: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        hooks.push({ body, priority: String(req.headers.priority), title: String(req.headers.title) });
        res.end("{}");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/comfyume-alerts`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  beforeEach(() => {
    hooks = [];
    dir = tmp("watchdog");
    write(join(dir, "checkout/.keep"), "");
    write(join(dir, "stack-up"), "0dc16ed0-f7fb-4eec-a5e6-004e082bb1f4\n");
    write(join(dir, "queue-length"), "0\n");
    // The stand-in for `pulumi destroy --run-program`: its backup hook fails when told to, and
    // then nothing is deleted; otherwise the stack goes down.
    write(
      join(dir, "teardown.sh"),
      `#!/usr/bin/env bash\necho run >>"${dir}/teardown-runs"\nif [[ -f "${dir}/backup-fails" ]]; then echo "backup-instance: VERIFY MISSING: r2:..." >&2; exit 1; fi\nrm -f "${dir}/stack-up"\necho destroyed\n`,
      0o755,
    );
  });

  const watchdog = (now: string, extra: Record<string, string> = {}) =>
    run("watchdog.sh", [], {
      env: {
        COMFYUME_ROOT: join(dir, "root"),
        WATCHDOG_NOW: now,
        WATCHDOG_WORKDIR: join(dir, "checkout"),
        // Like `pulumi stack output instanceId`: the id, or this error once the stack is empty.
        WATCHDOG_ACTIVE_CMD: `cat "${dir}/stack-up" 2>/dev/null || { echo "error: current stack does not have output property 'instanceId'" >&2; exit 1; }`,
        WATCHDOG_QUEUE_CMD: `cat "${dir}/queue-length"`,
        WATCHDOG_TEARDOWN_CMD: `"${dir}/teardown.sh"`,
        WATCHDOG_WEBHOOK_URL: url,
        WATCHDOG_CUTOFF: "22:00",
        WATCHDOG_IDLE_MINUTES: "180",
        ...extra,
      },
      timeoutMs: 20_000,
    });
  const teardownRuns = () => (existsSync(join(dir, "teardown-runs")) ? readFileSync(join(dir, "teardown-runs"), "utf8").trim().split("\n").length : 0);

  it("tears down at the cutoff, notifies, and does nothing once the stack is down", async () => {
    const r = await watchdog(at("22:05"));
    expect(r.stderr).toContain("tearing down workshop-day: the 22:00 cutoff (UTC) has passed");
    expect(r.code).toBe(0);
    expect(teardownRuns()).toBe(1);
    expect(existsSync(join(dir, "stack-up"))).toBe(false);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.body).toContain("workshop-day torn down: the 22:00 cutoff (UTC) has passed");
    expect(hooks[0]!.priority).toBe("default");
    expect(hooks[0]!.title).toBe("comfyume watchdog (workshop-day)");
    expect(readFileSync(join(dir, "root/var/log/comfyume/watchdog.log"), "utf8")).toContain("destroyed");

    const again = await watchdog(at("22:10"));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("workshop-day has no instance: nothing to do");
    expect(teardownRuns()).toBe(1);
    expect(hooks).toHaveLength(1);
  });

  it("refuses when the backup fails: instance kept, 'backup failed, instance kept', exit 1, no retry storm", async () => {
    write(join(dir, "backup-fails"), "");
    const r = await watchdog(at("23:00"));
    expect(r.code).toBe(1);
    expect(existsSync(join(dir, "stack-up"))).toBe(true);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.body).toMatch(/^backup failed, instance kept: the workshop-day teardown exited 1/);
    expect(hooks[0]!.priority).toBe("high");
    expect(r.stderr).toContain("FAILED in step 'teardown': teardown exited 1; instance kept");

    // Five minutes later: still failing state, no new attempt and no second message until the retry time.
    const soon = await watchdog(String(Number(at("23:00")) + 300));
    expect(soon.code).toBe(1);
    expect(soon.stderr).toContain("the last teardown failed at 23:00");
    expect(teardownRuns()).toBe(1);
    expect(hooks).toHaveLength(1);

    // After the retry interval, with the backup fixed, it goes through.
    const { rmSync } = await import("node:fs");
    rmSync(join(dir, "backup-fails"));
    const later = await watchdog(at("23:31"));
    expect(later.code).toBe(0);
    expect(teardownRuns()).toBe(2);
    expect(hooks.at(-1)!.body).toContain("torn down");
  });

  it("never reads a broken state check as 'nothing up': notifies and exits 1", async () => {
    const r = await watchdog(at("23:00"), { WATCHDOG_ACTIVE_CMD: `echo 'error: unable to open state directory "file:///srv/state"' >&2; exit 1` });
    expect(r.code).toBe(1);
    expect(hooks[0]!.body).toContain("watchdog cannot tell whether workshop-day is up");
    expect(hooks[0]!.body).toContain("unable to open state directory");
    expect(hooks[0]!.priority).toBe("high");
    expect(teardownRuns()).toBe(0);
  });

  it("does nothing before the cutoff while the queue is busy", async () => {
    write(join(dir, "queue-length"), "3\n");
    const r = await watchdog(at("15:00"));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("before the 22:00 cutoff, queue 3, empty for 0 min: nothing to do");
    expect(teardownRuns()).toBe(0);
    expect(hooks).toHaveLength(0);
  });

  it("tears down after the queue has been empty for the idle time", async () => {
    expect((await watchdog(at("12:00"))).code).toBe(0); // queue empty: the idle clock starts
    expect((await watchdog(at("14:59"))).stderr).toContain("empty for 179 min: nothing to do");
    write(join(dir, "queue-length"), "1\n");
    await watchdog(at("15:00")); // a job arrives: the idle clock resets
    write(join(dir, "queue-length"), "0\n");
    await watchdog(at("15:05"));
    expect(teardownRuns()).toBe(0);
    const r = await watchdog(at("18:05"));
    expect(r.code).toBe(0);
    expect(hooks[0]!.body).toContain("the queue has been empty for 180 minutes");
    expect(teardownRuns()).toBe(1);
  });

  it("gives a busy queue the grace time at the cutoff, and catches a stack forgotten past midnight", async () => {
    write(join(dir, "queue-length"), "2\n");
    const waiting = await watchdog(at("22:10"));
    expect(waiting.stderr).toContain("past the 22:00 cutoff but 2 job(s) wait");
    expect(teardownRuns()).toBe(0);
    await watchdog(at("22:31"));
    expect(teardownRuns()).toBe(1);

    write(join(dir, "stack-up"), "another\n");
    write(join(dir, "queue-length"), "0\n");
    const night = await watchdog(at("03:00", "2026-11-24"));
    expect(night.code).toBe(0);
    expect(teardownRuns()).toBe(2);
    // 07:00 is outside the window: a morning start is left alone.
    write(join(dir, "stack-up"), "morning\n");
    await watchdog(at("07:00", "2026-11-24"));
    expect(teardownRuns()).toBe(2);
  });
});

describe("install-watchdog.sh", () => {
  it("installs the timer, service and 0600 settings file, and a second run changes nothing", async () => {
    const root = tmp("watchdog-install");
    const calls = join(root, "systemctl-calls");
    write(join(root, "bin/systemctl"), `#!/usr/bin/env bash\necho "$*" >>"${calls}"\n`, 0o755);
    const install = () =>
      run("install-watchdog.sh", ["--set", "WATCHDOG_CUTOFF=21:30", "--set", "WATCHDOG_TZ=Europe/Helsinki", "--set", "WATCHDOG_WORKDIR=/opt/comfyume-infra"], {
        env: { COMFYUME_ROOT: root, SYSTEMCTL: join(root, "bin/systemctl") },
        input: "REDISCLI_AUTH=redis-pass\nWATCHDOG_WEBHOOK_URL=https://ntfy.sh/comfyume-secret-topic\n",
      });
    const first = await install();
    expect(first.stderr).toContain("step verify: done");
    expect(first.code).toBe(0);
    const envFile = join(root, "etc/comfyume/watchdog.env");
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    const env = readFileSync(envFile, "utf8");
    expect(env).toContain("WATCHDOG_CUTOFF='21:30'");
    expect(env).toContain("REDISCLI_AUTH='redis-pass'");
    expect(first.stderr).not.toContain("redis-pass");
    expect(first.stderr).not.toContain("comfyume-secret-topic");
    const timer = readFileSync(join(root, "etc/systemd/system/comfyume-watchdog.timer"), "utf8");
    expect(timer).toContain("OnCalendar=*:0/5");
    const service = readFileSync(join(root, "etc/systemd/system/comfyume-watchdog.service"), "utf8");
    expect(service).toContain(`EnvironmentFile=${envFile}`);
    expect(service).toContain("ExecStart=/usr/local/lib/comfyume/host/watchdog.sh");
    expect(existsSync(join(root, "usr/local/lib/comfyume/host/watchdog.sh"))).toBe(true);
    expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual(["daemon-reload", "enable --now comfyume-watchdog.timer", "is-enabled --quiet comfyume-watchdog.timer"]);

    const second = await install();
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/step units: done in [\d.]+s \(unchanged\)/);
    expect(second.stderr).toMatch(/step env-file: done in [\d.]+s \(unchanged\)/);
    expect(readFileSync(calls, "utf8").trim().split("\n").filter((l) => l === "daemon-reload")).toHaveLength(1);
  });
});

describe("watchdogInstall (the idle stack's command)", () => {
  it("turns comfyume:watchdog into an install-watchdog.sh run that installs, with secrets on stdin only", async () => {
    const { parseMoneySettings, watchdogInstall } = await import("../../infra/money");
    const w = parseMoneySettings({ watchdog: { enabled: true, cutoff: "21:45", timezone: "Europe/Helsinki", webhookUrl: "https://ntfy.sh/secret-topic" } }).watchdog;
    const install = watchdogInstall(w, { scriptsDir: "/opt/comfyume-infra/scripts", redisHost: "127.0.0.1", redisPassword: "pw'1" });
    expect(install.command).toContain("'WATCHDOG_CUTOFF=21:45'");
    expect(install.command).toContain("'WATCHDOG_TZ=Europe/Helsinki'");
    expect(install.command).not.toContain("secret-topic");
    expect(install.command).not.toContain("pw");
    expect(install.stdin).toBe("REDISCLI_AUTH=pw'1\nWATCHDOG_WEBHOOK_URL=https://ntfy.sh/secret-topic\n");

    expect(install.command).toContain("'WATCHDOG_ACTIVE_OUTPUT=instanceId'");
    // inference = serverless: the watchdog watches the day's deployments (its teardown returns them to zero).
    const serverless = parseMoneySettings({ watchdog: { enabled: true, activeOutput: "serverlessDeployments" } }).watchdog;
    expect(watchdogInstall(serverless, { scriptsDir: "/opt/comfyume-infra/scripts" }).command).toContain("'WATCHDOG_ACTIVE_OUTPUT=serverlessDeployments'");
    expect(() => parseMoneySettings({ watchdog: { activeOutput: "gpu" } })).toThrow(/comfyume:watchdog\.activeOutput: must be instanceId .* or serverlessDeployments/);

    // The generated command really installs (the installer from this checkout, a sandbox root).
    const root = tmp("watchdog-cmd");
    write(join(root, "bin/systemctl"), "#!/usr/bin/env bash\nexit 0\n", 0o755);
    const { spawnSync } = await import("node:child_process");
    const cmd = watchdogInstall({ ...w, webhookUrl: undefined }, { scriptsDir: join(__dirname, "../../scripts"), redisHost: "127.0.0.1" }).command;
    const r = spawnSync("bash", ["-c", cmd], { env: { ...process.env, COMFYUME_ROOT: root, SYSTEMCTL: join(root, "bin/systemctl") }, input: "", encoding: "utf8" });
    expect(r.stderr).toContain("step verify: done");
    expect(readFileSync(join(root, "etc/comfyume/watchdog.env"), "utf8")).toContain("WATCHDOG_CUTOFF='21:45'");
  });
});
