// The watchdog driving the real Pulumi engine: a day-like stack (instance + scratch + a backup gate
// that must pass before the instance is deleted) is up in the simulator at the cutoff. With the
// backup failing, the watchdog's teardown (`pulumi destroy --run-program`) stops and the instance
// stays; once the backup works, the next run destroys the stack and the simulator bills nothing.
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";
import { run } from "../scripts/helpers";
import { FAST } from "./helpers";

const ready = pulumiToolchainReady();
const at = (hhmm: string) => String(Date.parse(`2026-11-23T${hhmm}:00Z`) / 1000);

describe.runIf(ready)("watchdog against a real day-like stack in the simulator", () => {
  let sim: RunningSimulator;
  let sandbox: PulumiSandbox;
  let server: Server;
  let hookUrl: string;
  const hooks: string[] = [];
  let env: Record<string, string>;
  let failFile: string;

  const pulumi = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      execFile(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"], { cwd: sandbox.dir, env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
        error ? reject(new Error(`pulumi ${args.join(" ")}: ${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
      );
    });

  const watchdog = (now: string) =>
    run("watchdog.sh", [], {
      env: {
        ...env,
        COMFYUME_ROOT: path.join(sandbox.dir, "mello"),
        WATCHDOG_NOW: now,
        WATCHDOG_WORKDIR: sandbox.dir,
        WATCHDOG_DAY_STACK: "dev",
        WATCHDOG_ACTIVE_CMD: `${repoRoot}/scripts/pulumi stack output instanceId --stack dev --non-interactive`,
        WATCHDOG_TEARDOWN_CMD: `${repoRoot}/scripts/pulumi destroy --stack dev --run-program --yes --skip-preview --non-interactive`,
        WATCHDOG_QUEUE_CMD: "echo 0",
        WATCHDOG_WEBHOOK_URL: hookUrl,
      },
      timeoutMs: 240_000,
    });

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        hooks.push(body);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
    sim = await startSimulator({ timing: FAST });
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/day-like"));
    failFile = path.join(sandbox.dir, "backup-fails");
    env = {
      PULUMI_BACKEND_URL: String(sandbox.env.PULUMI_BACKEND_URL),
      PULUMI_CONFIG_PASSPHRASE: String(sandbox.env.PULUMI_CONFIG_PASSPHRASE),
      PULUMI_HOME: String(sandbox.env.PULUMI_HOME),
      COMFYUME_REPO: repoRoot,
      COMFYUME_NO_POLICY: "1",
      VERDA_POLL_INTERVAL_MS: "20",
      VERDA_RETRY_BASE_MS: "20",
    };
    await pulumi(["stack", "init", "dev"]);
    await pulumi(["config", "set", "verda:baseUrl", sim.baseUrl]);
    await pulumi(["config", "set", "verda:clientId", sim.clientId]);
    await pulumi(["config", "set", "--secret", "verda:clientSecret", sim.clientSecret]);
    await pulumi(["config", "set", "backupFailFile", failFile]);
    await pulumi(["up", "--yes", "--skip-preview"]);
  }, 300_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await sim?.close();
    await new Promise<void>((r) => server?.close(() => r()) ?? r());
  });

  it("keeps the instance when the backup fails, and tears the stack down once it works", async () => {
    expect(sim.state().instances.map((i) => i.status)).toEqual(["running"]);

    writeFileSync(failFile, "");
    const refused = await watchdog(at("22:05"));
    expect(refused.code).toBe(1);
    expect(hooks.at(-1)).toMatch(/^backup failed, instance kept/);
    expect(sim.state().instances.map((i) => i.status)).toEqual(["running"]);

    rmSync(failFile);
    const done = await watchdog(at("22:40"));
    expect(done.stderr).toContain("step verify: done");
    expect(done.code).toBe(0);
    expect(hooks.at(-1)).toContain("dev torn down: the 22:00 cutoff (UTC) has passed");
    const state = sim.state();
    expect(state.instances).toHaveLength(0);
    expect(state.meters.filter((m) => m.running)).toEqual([]);

    const idle = await watchdog(at("22:45"));
    expect(idle.code).toBe(0);
    expect(idle.stderr).toContain("dev has no instance: nothing to do");
  }, 600_000);
});
