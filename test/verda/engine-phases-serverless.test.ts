// inference = serverless through the REAL program and the real Pulumi CLI against the simulator: the month
// stack creates the deployments at zero replicas (one create even when Verda answers 500 after creating);
// the day stack sets the day's scaling with one PATCH per deployment and its destroy, by hand or by the
// watchdog at the cutoff, PATCHes them back to zero and never deletes them; the month does not revert the day.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { validateExchanges } from "../support/openapi";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiRun, type PulumiSandbox } from "../support/pulumi-cli";
import { run } from "../scripts/helpers";
import { useTsxMain } from "../support/tsx-entry";

const HF_TOKEN = "hf_phaseEngineToken_5e4d3c2b1a";
const SPOT = "comfyume-testing-worker-h200-spot";
const ON_DEMAND = "comfyume-testing-worker-h200-on-demand";

/** The repository's program; the `idle` stack (FAKE_IDLE=1) only has to exist for the month's StackReference. */
function projectFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "comfyume-serverless-phases-"));
  // .comfyume: scripts/pulumi, run from the checkout by the watchdog, finds the toolchain there.
  for (const entry of ["infra", "components", "scripts", "package.json", "tsconfig.json", ".comfyume"]) fs.symlinkSync(path.join(repoRoot, entry), path.join(dir, entry));
  fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  useTsxMain(path.join(dir, "Pulumi.yaml")); // its own index.ts
  fs.mkdirSync(path.join(dir, "stacks"));
  fs.writeFileSync(path.join(dir, "index.ts"), `import { buildProgram } from "./infra/program";\nexport = process.env.FAKE_IDLE === "1" ? {} : buildProgram();\n`);
  return dir;
}

describe.runIf(pulumiToolchainReady())("serverless phases under the real engine", () => {
  let sim: RunningSimulator;
  let fixture: string;
  let sandbox: PulumiSandbox;
  const env: NodeJS.ProcessEnv = { COMFYUME_NO_POLICY: "1", VERDA_POLL_INTERVAL_MS: "50", VERDA_RETRY_BASE_MS: "50" };
  const outputs: string[] = [];
  const ok = async (stack: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<PulumiRun> => {
    const r = await sandbox.runAsync([...args, "--stack", stack], { env: { ...env, ...extra }, timeoutMs: 240_000 });
    outputs.push(r.stdout, r.stderr);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} --stack ${stack} failed (exit ${r.status})\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const writesSince = (from: number) =>
    sim.exchanges().slice(from).map((x) => `${x.method} ${x.url.split("?")[0]}`).filter((r) => !r.startsWith("GET ") && !r.endsWith("/oauth2/token")).sort();
  const live = (name: string) => sim.state().container_deployments.find((d) => d.name === name);
  const runningReplicas = () => sim.state().meters.filter((m) => m.resource_type === "replica" && m.running).length;

  function writeStack(stack: string, values: Record<string, unknown>): void {
    const yaml = Object.entries(values).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`).join("\n");
    fs.writeFileSync(path.join(sandbox.dir, "stacks", `Pulumi.${stack}.yaml`), `config:\n${yaml}\n`);
  }

  beforeAll(async () => {
    sim = await startSimulator({ host: "127.0.104.7", timing: { volumeCreateMs: 30, replicaColdStartMs: 50 } });
    fixture = projectFixture();
    sandbox = pulumiSandbox(fixture);
    for (const key of Object.keys(sandbox.env)) if (key.startsWith("VERDA_")) env[key] = undefined;
    const serverless = {
      image: "ghcr.io/ahelme/comfyume-worker:v1",
      deployments: [{ gpu: "H200", spot: true }, { gpu: "H200", spot: false, minReplicas: 0 }],
      prices: { H200: { onDemand: 2.49, spot: 1.25 } },
      scaling: { minReplicas: 1, maxReplicas: 10 },
      // The app on mello (no app host here): said outright that <sfs>/outputs is not backed up.
      outputsBackup: "none",
    };
    const common = { "verda:baseUrl": sim.baseUrl, "verda:clientId": sim.clientId, "comfyume:inference": "serverless", "comfyume:serverless": serverless, "comfyume:forecast": { workshopDays: 1, hoursPerDay: 3 } };
    await ok("idle", ["stack", "init"]);
    await ok("idle", ["up", "--yes", "--skip-preview"], { FAKE_IDLE: "1" });
    for (const stack of ["testing-month", "testing-day"]) {
      await ok(stack, ["stack", "init"]);
      // An unprotected SFS, so the last test can destroy the month stack.
      writeStack(stack, { ...common, "comfyume:phase": stack, ...(stack === "testing-month" ? { "comfyume:sfs": { protect: false } } : {}) });
      await ok(stack, ["config", "set", "--secret", "verda:clientSecret", sim.clientSecret]);
    }
    await ok("testing-month", ["config", "set", "--secret", "comfyume:hfToken", HF_TOKEN]);
  }, 300_000);
  afterAll(async () => {
    sandbox?.cleanup();
    if (fixture) fs.rmSync(fixture, { recursive: true, force: true });
    await sim?.close();
  });

  it("month up creates each deployment once, at zero replicas, on the month's SFS, even when the create answers 500 after creating", async () => {
    sim.setFaults({ type: "http", method: "POST", path: "/v1/container-deployments", status: 500, after_apply: true, count: 1 });
    await ok("testing-month", ["up", "--yes", "--skip-preview"]);
    const out = JSON.parse((await ok("testing-month", ["stack", "output", "--json"])).stdout);
    expect(out.serverlessDeployments.sort()).toEqual([ON_DEMAND, SPOT]);
    expect(sim.state().container_deployments.map((d) => d.name).sort()).toEqual([ON_DEMAND, SPOT]);
    for (const name of [SPOT, ON_DEMAND]) {
      expect(live(name)!.scaling).toMatchObject({ min_replica_count: 0, max_replica_count: 0 });
      expect(live(name)!.containers[0]!.volume_mounts).toContainEqual({ type: "shared", mount_path: "/mnt/sfs", volume_id: out.sfsId });
    }
    const state = JSON.parse((await ok("testing-month", ["stack", "export"])).stdout);
    expect(state.deployment.resources.filter((r: { type: string }) => r.type.endsWith("verda:ContainerDeployment"))).toHaveLength(2);
    expect(runningReplicas()).toBe(0);
  }, 300_000);

  it("day up sets the day's scaling: one PATCH per deployment and nothing else written", async () => {
    const from = sim.exchanges().length;
    await ok("testing-day", ["up", "--yes", "--skip-preview"]);
    expect(writesSince(from)).toEqual([`PATCH /v1/container-deployments/${ON_DEMAND}/scaling`, `PATCH /v1/container-deployments/${SPOT}/scaling`]);
    expect(live(SPOT)!.scaling).toMatchObject({ min_replica_count: 1, max_replica_count: 10 });
    expect(live(ON_DEMAND)!.scaling).toMatchObject({ min_replica_count: 0, max_replica_count: 10 });
    const cost = JSON.parse((await ok("testing-day", ["stack", "output", "costEstimate", "--json"])).stdout);
    expect(cost.forecast.byLayer.day).toBeCloseTo(3.75, 6); // 3 h × 1 spot H200 replica at 1.25
  }, 300_000);

  it("the month stack leaves the day's scaling alone (preview --refresh shows no change)", async () => {
    const from = sim.exchanges().length;
    await ok("testing-month", ["preview", "--refresh", "--expect-no-changes"]);
    await ok("testing-month", ["up", "--refresh", "--yes", "--skip-preview"]);
    expect(writesSince(from)).toEqual([]);
    expect(live(SPOT)!.scaling).toMatchObject({ min_replica_count: 1 });
  }, 300_000);

  it("day destroy returns every deployment to zero with one PATCH each and deletes none", async () => {
    const from = sim.exchanges().length;
    await ok("testing-day", ["destroy", "--yes", "--skip-preview"], { COMFYUME_PULUMI_COMMAND: "destroy" });
    expect(writesSince(from)).toEqual([`PATCH /v1/container-deployments/${ON_DEMAND}/scaling`, `PATCH /v1/container-deployments/${SPOT}/scaling`]);
    for (const name of [SPOT, ON_DEMAND]) expect(live(name)!.scaling).toMatchObject({ min_replica_count: 0, max_replica_count: 0 });
    expect(runningReplicas()).toBe(0);
  }, 300_000);

  it("the watchdog at the cutoff tears the day down: deployments back to zero, still there", async () => {
    await ok("testing-day", ["up", "--yes", "--skip-preview"]);
    expect(live(SPOT)!.scaling).toMatchObject({ min_replica_count: 1 });
    const pulumiEnv = Object.fromEntries(Object.entries({ ...sandbox.env, ...env }).filter((kv): kv is [string, string] => typeof kv[1] === "string" && /^(PULUMI_|COMFYUME_NO_POLICY|VERDA_)/.test(kv[0])));
    const result = await run("watchdog.sh", [], {
      env: {
        ...pulumiEnv,
        COMFYUME_ROOT: path.join(sandbox.dir, "mello"),
        WATCHDOG_NOW: String(Date.parse("2026-11-23T23:00:00Z") / 1000),
        WATCHDOG_WORKDIR: sandbox.dir,
        WATCHDOG_DAY_STACK: "testing-day",
        WATCHDOG_ACTIVE_OUTPUT: "serverlessDeployments",
        WATCHDOG_QUEUE_CMD: "echo 0",
      },
      timeoutMs: 300_000,
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    for (const name of [SPOT, ON_DEMAND]) expect(live(name)!.scaling).toMatchObject({ min_replica_count: 0, max_replica_count: 0 });
    expect(sim.state().container_deployments.map((d) => d.name).sort()).toEqual([ON_DEMAND, SPOT]);
  }, 360_000);

  it("month destroy deletes the deployments; the HF token travelled only to POST /secrets; every exchange conforms", async () => {
    await ok("testing-month", ["destroy", "--yes", "--skip-preview"], { COMFYUME_PULUMI_COMMAND: "destroy" });
    expect(sim.state().container_deployments).toEqual([]);
    const carriers = sim.exchanges().filter((x) => (x.requestBody + x.responseBody + x.url).includes(HF_TOKEN)).map((x) => `${x.method} ${x.url}`);
    expect(carriers).toEqual(["POST /v1/secrets"]);
    expect(outputs.join("\n")).not.toContain(HF_TOKEN);
    expect(validateExchanges(sim.exchanges())).toEqual([]);
  }, 300_000);
});
