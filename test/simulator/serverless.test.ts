// Serverless Containers in the simulator: deployments (create/get/list/patch/delete, scaling, status,
// replicas with a cold start, billing per running replica), secrets, file secrets and registry
// credentials. Every request and response is validated against Verda's OpenAPI document.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { SERVERLESS_ROUTES } from "../../sim/simulator/serverless-routes";
import { findOperation, validateExchanges } from "../support/openapi";
import { Caller, startTestSim, waitFor } from "./helpers";

const SCALING = {
  min_replica_count: 0,
  max_replica_count: 10,
  scale_up_policy: { delay_seconds: 0 },
  scale_down_policy: { delay_seconds: 300 },
  queue_message_ttl_seconds: 36000,
  concurrent_requests_per_replica: 1,
  scaling_triggers: { queue_load: { threshold: 2 }, cpu_utilization: { enabled: false, threshold: 80 }, gpu_utilization: { enabled: false, threshold: 80 } },
};

function deploymentBody(name: string, sfsId: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    is_spot: true,
    compute: { name: "H200", size: 1 },
    container_registry_settings: { is_private: true, credentials: { name: "ghcr" } },
    scaling: SCALING,
    containers: [
      {
        image: "ghcr.io/ahelme/comfyume-worker:v1",
        exposed_port: 8188,
        healthcheck: { enabled: true, port: 8188, path: "/" },
        entrypoint_overrides: { enabled: true, cmd: ["python3", "/workspace/ComfyUI/main.py", "--port", "8188"] },
        env: [
          { name: "HF_HOME", type: "plain", value_or_reference_to_secret: "/mnt/sfs/cache/huggingface" },
          { name: "HF_TOKEN", type: "secret", value_or_reference_to_secret: "hf-token" },
        ],
        volume_mounts: [
          { type: "scratch", mount_path: "/data" },
          { type: "memory", mount_path: "/dev/shm", size_in_mb: 64 },
          { type: "shared", mount_path: "/mnt/sfs", volume_id: sfsId },
          { type: "secret", mount_path: "/secret-files", secret_name: "worker-files" },
        ],
      },
    ],
    ...extra,
  };
}

describe("simulator: serverless containers", () => {
  let sim: RunningSimulator;
  let c: Caller;
  let sfsId: string;
  const SECRET_VALUE = "hf_simulatorSecretValue0123456789";

  beforeAll(async () => {
    ({ sim, c } = await startTestSim({ host: "127.0.104.1", timing: { replicaColdStartMs: 150 } }));
    sfsId = await c.createVolume({ type: "NVMe_Shared", name: "sfs", size: 100 });
    await c.waitVolume(sfsId, "created");
  });
  afterAll(async () => sim.close());
  // Every answer conforms; every request the simulator accepted conforms too (the refused ones are
  // deliberately invalid, e.g. an unknown registry type).
  afterEach(() => {
    expect(validateExchanges(sim.exchanges(), { checkRequest: false })).toEqual([]);
    expect(validateExchanges(sim.exchanges().filter((x) => x.status < 400))).toEqual([]);
  });

  it("stores secrets, file secrets and registry credentials by name and never shows their values", async () => {
    expect((await c.call("POST", "/secrets", { name: "hf-token", value: SECRET_VALUE })).status).toBe(201);
    expect((await c.call("POST", "/secrets", { name: "hf-token", value: "again" })).status).toBe(409);
    expect((await c.call("POST", "/file-secrets", { name: "worker-files", files: [{ file_name: "token.txt", base64_content: Buffer.from("x").toString("base64") }] })).status).toBe(201);
    expect((await c.call("POST", "/container-registry-credentials", { name: "ghcr", type: "ghcr", username: "ahelme", access_token: "ghp_registrySecret42" })).status).toBe(201);
    expect((await c.call("POST", "/container-registry-credentials", { name: "bad", type: "nope" })).status).toBe(400);

    const secrets = await c.call("GET", "/secrets");
    expect(secrets.json.map((s: { name: string; secret_type: string }) => [s.name, s.secret_type]).sort()).toEqual([["hf-token", "generic"], ["worker-files", "file-secret"]]);
    expect((await c.call("GET", "/file-secrets")).json[0]).toMatchObject({ name: "worker-files", file_names: ["token.txt"] });
    expect((await c.call("GET", "/container-registry-credentials")).json.map((x: { name: string }) => x.name)).toEqual(["ghcr"]);
    const everything = JSON.stringify([secrets.json, sim.state()]);
    expect(everything).not.toContain(SECRET_VALUE);
    expect(everything).not.toContain("ghp_registrySecret42");
  });

  it("creates a deployment at zero replicas, scales it up with a cold start and bills each running replica", async () => {
    const created = await c.call("POST", "/container-deployments", deploymentBody("comfyume-h200-spot", sfsId));
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ name: "comfyume-h200-spot", is_spot: true, endpoint_base_url: "https://containers.datacrunch.io/comfyume-h200-spot" });
    const container = created.json.containers[0];
    expect(container.name).toBe("comfyume-worker-0");
    expect(container.image.image).toBe("ghcr.io/ahelme/comfyume-worker:v1");
    expect((await c.call("GET", "/container-deployments/comfyume-h200-spot/replicas")).json).toEqual({ list: [] });
    expect((await c.call("GET", "/container-deployments")).json).toHaveLength(1);

    const scaled = await c.call("PATCH", "/container-deployments/comfyume-h200-spot/scaling", { min_replica_count: 2 });
    expect(scaled.json).toMatchObject({ min_replica_count: 2, max_replica_count: 10, scale_down_policy: { delay_seconds: 300 } });
    expect((await c.call("GET", "/container-deployments/comfyume-h200-spot/scaling")).json).toEqual(scaled.json);
    const cold = (await c.call("GET", "/container-deployments/comfyume-h200-spot/replicas")).json.list;
    expect(cold.map((r: { status: string }) => r.status)).toEqual(["initializing", "initializing"]);
    expect((await c.call("GET", "/container-deployments/comfyume-h200-spot/status")).json.status).toBe("initializing");
    expect(sim.state().meters.filter((m) => m.resource_type === "replica")).toEqual([]); // not billed while cold

    await waitFor(async () => ((await c.call("GET", "/container-deployments/comfyume-h200-spot/status")).json.status === "healthy" ? true : undefined), 3000, "replicas running");
    const meters = sim.state().meters.filter((m) => m.resource_type === "replica" && m.running);
    expect(meters.map((m) => m.price_per_hour)).toEqual([1.25, 1.25]); // H200 spot × 1 GPU each

    await c.call("PATCH", "/container-deployments/comfyume-h200-spot/scaling", { min_replica_count: 0 });
    expect((await c.call("GET", "/container-deployments/comfyume-h200-spot/replicas")).json.list).toEqual([]);
    expect(sim.state().burn_rate_per_hour).toBeLessThan(1); // only the SFS keeps billing
  });

  it("patches image, env and command in place and refuses what the document forbids", async () => {
    const patched = await c.call("PATCH", "/container-deployments/comfyume-h200-spot", {
      containers: [{ name: "comfyume-worker-0", image: "ghcr.io/ahelme/comfyume-worker:v2", env: [{ name: "HF_TOKEN", type: "secret", value_or_reference_to_secret: "hf-token" }] }],
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.containers[0]).toMatchObject({ image: { image: "ghcr.io/ahelme/comfyume-worker:v2" }, env: [{ name: "HF_TOKEN" }], exposed_port: 8188 });

    expect((await c.call("PATCH", "/container-deployments/comfyume-h200-spot", { containers: [{ name: "nope", image: "x" }] })).status).toBe(400);
    expect((await c.call("PATCH", "/container-deployments/comfyume-h200-spot", { containers: [{ name: "comfyume-worker-0", env: [{ name: "K", type: "secret", value_or_reference_to_secret: "missing" }] }] })).status).toBe(400);
    expect((await c.call("POST", "/container-deployments", deploymentBody("comfyume-h200-spot", sfsId))).status).toBe(409);
    expect((await c.call("POST", "/container-deployments", deploymentBody("other", "00000000-0000-4000-8000-000000000000"))).status).toBe(400);
    expect((await c.call("POST", "/container-deployments", deploymentBody("other", sfsId, { compute: { name: "Z80", size: 1 } }))).status).toBe(400);
    expect((await c.call("GET", "/container-deployments/missing")).status).toBe(404);
  });

  it("refuses to delete a secret in use unless forced, and deletes the deployment with its replicas", async () => {
    expect((await c.call("DELETE", "/secrets/hf-token")).status).toBe(400);
    expect((await c.call("DELETE", "/container-registry-credentials/ghcr")).status).toBe(400);
    await c.call("PATCH", "/container-deployments/comfyume-h200-spot/scaling", { min_replica_count: 1 });
    expect((await c.call("DELETE", "/container-deployments/comfyume-h200-spot")).status).toBe(200);
    expect(sim.state().meters.filter((m) => m.resource_type === "replica" && m.running)).toEqual([]);
    expect(sim.state().container_deployments).toEqual([]);
    for (const path of ["/secrets/hf-token", "/file-secrets/worker-files", "/container-registry-credentials/ghcr"]) {
      expect((await c.call("DELETE", path)).status, path).toBe(200);
      expect((await c.call("DELETE", path)).status, path).toBe(404);
    }
  });

  it("lists the serverless compute with its availability; a no_capacity fault naming it makes it unavailable", async () => {
    const listed = async () => (await c.call("GET", "/serverless-compute-resources")).json as { name: string; size: number; is_available: boolean }[];
    expect(await listed()).toContainEqual({ name: "H200", size: 1, is_available: true });
    sim.setFaults({ type: "no_capacity", instance_type: "H200" });
    expect(await listed()).toContainEqual({ name: "H200", size: 1, is_available: false });
    expect(await listed()).toContainEqual({ name: "B300", size: 1, is_available: true });
    sim.clearFaults();
  });

  it("the catalogue quotes the serverless price a running replica bills (the forecast reads one, the bill the other)", async () => {
    const types = (await c.call("GET", "/instance-types")).json as { instance_type: string; serverless_price: string; serverless_spot_price: string }[];
    const h100 = types.find((t) => t.instance_type === "1H100.80S.32V")!;
    const quoted = { onDemand: Number(h100.serverless_price), spot: Number(h100.serverless_spot_price) };
    const created = await c.call("POST", "/container-deployments", {
      name: "priced-h100-spot",
      is_spot: true,
      compute: { name: "H100", size: 1 },
      container_registry_settings: { is_private: false, credentials: { name: "" } },
      scaling: { ...SCALING, min_replica_count: 1 },
      containers: [{ image: "ghcr.io/ahelme/comfyume-worker:v1", exposed_port: 8188 }],
    });
    expect(created.status, created.text).toBe(201);
    await waitFor(async () => (sim.state().meters.some((m) => m.resource_id.startsWith("priced-h100-spot/") && m.running) ? true : undefined), 3000, "replica running");
    const billed = sim.state().meters.find((m) => m.resource_id.startsWith("priced-h100-spot/") && m.running)!;
    expect(billed.price_per_hour).toBe(quoted.spot);
    await c.call("DELETE", "/container-deployments/priced-h100-spot");
  });

  it("every serverless route was exercised above and is an operation of the document", () => {
    const covered = new Set(sim.exchanges().map((x) => `${x.method} ${findOperation(x.method, x.url)?.template}`));
    expect(SERVERLESS_ROUTES.map((r) => `${r.method} ${r.path}`).filter((route) => !covered.has(route))).toEqual([]);
  });
});
