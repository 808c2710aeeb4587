// The serverless providers under the real Pulumi engine against the in-process simulator: a console edit
// shows in `preview --refresh` and `up --refresh` reverts it in place; a scaling change is one PATCH with no
// delete; the secret values appear in no request other than their own endpoint's, in no state and no output.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VerdaClient } from "../../infra/verda/client";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { validateExchanges } from "../support/openapi";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiRun, type PulumiSandbox } from "../support/pulumi-cli";

const HF_TOKEN = "hf_engineSecretValue_7a6b5c4d3e2f";
const GHCR_TOKEN = "ghp_engineRegistryToken_0a1b2c3d";
const DEPLOYMENT = "comfyume-h200-spot";

describe.runIf(pulumiToolchainReady())("serverless providers under the real engine", () => {
  let sim: RunningSimulator;
  let sandbox: PulumiSandbox;
  const env: NodeJS.ProcessEnv = {};
  const outputs: string[] = [];
  const ok = async (args: string[]): Promise<PulumiRun> => {
    const r = await sandbox.runAsync(args, { env, timeoutMs: 180_000 });
    outputs.push(r.stdout, r.stderr);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (exit ${r.status})\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const requestsSince = (from: number) =>
    sim.exchanges().slice(from).map((x) => `${x.method} ${x.url.split("?")[0]}`).filter((r) => !r.startsWith("GET ") && !r.endsWith("/oauth2/token"));
  const live = () => sim.state().container_deployments.find((d) => d.name === DEPLOYMENT)!;

  beforeAll(async () => {
    sim = await startSimulator({ host: "127.0.104.3", timing: { volumeCreateMs: 30, replicaColdStartMs: 50 } });
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/serverless"));
    for (const key of Object.keys(sandbox.env)) if (key.startsWith("VERDA_")) env[key] = undefined;
    Object.assign(env, { COMFYUME_REPO: repoRoot, VERDA_POLL_INTERVAL_MS: "50", VERDA_RETRY_BASE_MS: "50" });
    await ok(["stack", "init", "dev"]);
    await ok(["config", "set", "verda:baseUrl", sim.baseUrl]);
    await ok(["config", "set", "verda:clientId", sim.clientId]);
    await ok(["config", "set", "--secret", "verda:clientSecret", sim.clientSecret]);
    await ok(["config", "set", "--secret", "hfToken", HF_TOKEN]);
    await ok(["config", "set", "--secret", "ghcrToken", GHCR_TOKEN]);
    await ok(["up", "--yes", "--skip-preview"]);
  }, 240_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await sim?.close();
  });

  it("a console edit shows as an update in preview --refresh, and up --refresh reverts it in place", async () => {
    const console = new VerdaClient({ clientId: sim.clientId, clientSecret: sim.clientSecret, baseUrl: sim.baseUrl });
    await console.serverless.patchDeployment(DEPLOYMENT, {
      containers: [{ name: "comfyume-worker-0", entrypoint_overrides: { enabled: true, cmd: ["python3", "/workspace/ComfyUI/main.py", "--port", "8188"] } }],
    });
    await console.serverless.patchScaling(DEPLOYMENT, { scaling_triggers: { queue_load: { threshold: 5 } } });

    const preview = await ok(["preview", "--refresh", "--diff"]);
    expect(preview.stdout).toContain("~ pulumi-nodejs:dynamic/verda:ContainerDeployment: (update)");
    expect(preview.stdout).toContain("--output-directory");
    expect(preview.stdout).not.toMatch(/replace|\+-|-\+/);

    const from = sim.exchanges().length;
    await ok(["up", "--refresh", "--yes", "--skip-preview"]);
    expect(requestsSince(from)).toEqual([`PATCH /v1/container-deployments/${DEPLOYMENT}`, `PATCH /v1/container-deployments/${DEPLOYMENT}/scaling`]);
    expect(live().containers[0]!.entrypoint_overrides?.cmd).toContain("--output-directory");
    expect(live().scaling).toMatchObject({ scaling_triggers: { queue_load: { threshold: 2 } } });
    await ok(["preview", "--refresh", "--expect-no-changes"]);
  }, 300_000);

  it("a scaling change is exactly one PATCH of the scaling, no delete", async () => {
    await ok(["config", "set", "minReplicas", "2"]);
    const from = sim.exchanges().length;
    await ok(["up", "--yes", "--skip-preview"]);
    expect(requestsSince(from)).toEqual([`PATCH /v1/container-deployments/${DEPLOYMENT}/scaling`]);
    expect(live().replicas).toHaveLength(2);
  }, 180_000);

  it("secret values: only in their own endpoint's request, never in state or CLI output; all exchanges conform", async () => {
    const state = (await ok(["stack", "export"])).stdout;
    expect(state).toContain("pulumi-nodejs:dynamic/verda:Secret");
    for (const secret of [HF_TOKEN, GHCR_TOKEN]) {
      expect(state).not.toContain(secret);
      expect(outputs.join("\n")).not.toContain(secret);
    }
    const carriers = (text: string) => sim.exchanges().filter((x) => (x.requestBody + x.responseBody + x.url).includes(text)).map((x) => `${x.method} ${x.url}`);
    expect(carriers(HF_TOKEN)).toEqual(["POST /v1/secrets"]);
    expect(carriers(GHCR_TOKEN)).toEqual(["POST /v1/container-registry-credentials"]);
    expect(validateExchanges(sim.exchanges())).toEqual([]);

    await ok(["destroy", "--yes", "--skip-preview"]);
    expect(sim.state()).toMatchObject({ container_deployments: [], secrets: [], registry_credentials: [] });
    expect(sim.state().meters.filter((m) => m.resource_type === "replica" && m.running)).toEqual([]);
  }, 240_000);
});
