// The serverless replica stand-in: a prompt is served only with the inference key, only while the deployment
// has a running replica, and its output lands where the deployment's own command and shared mount put it:
// in the SFS directory of the volume the deployment mounts. A deployment whose outputs would stay in the
// container is refused, naming why.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReplicaStandIn, type ReplicaStandIn } from "../../sim/local-cloud/replica-stand-in";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, startTestSim, waitFor } from "../simulator/helpers";

const KEY = "inference-key-for-the-test";
let sim: RunningSimulator;
let c: Caller;
let standIn: ReplicaStandIn;
let sfsRoot: string;
let sfsId: string;

function deployment(name: string, cmd: string[]) {
  return {
    name,
    is_spot: true,
    compute: { name: "H100", size: 1 },
    container_registry_settings: { is_private: false, credentials: { name: "" } },
    scaling: {
      min_replica_count: 0,
      max_replica_count: 2,
      scale_up_policy: { delay_seconds: 0 },
      scale_down_policy: { delay_seconds: 300 },
      queue_message_ttl_seconds: 36000,
      concurrent_requests_per_replica: 1,
      scaling_triggers: { queue_load: { threshold: 2 } },
    },
    containers: [
      {
        image: "ghcr.io/ahelme/comfyume-worker:v1",
        exposed_port: 8188,
        entrypoint_overrides: { enabled: true, cmd },
        volume_mounts: [{ type: "shared", mount_path: "/mnt/sfs", volume_id: sfsId }],
      },
    ],
  };
}

const prompt = async (name: string, key = KEY) => {
  const res = await fetch(`${standIn.url}/${name}/prompt`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: '{"prompt":{}}', signal: AbortSignal.timeout(5000) });
  return { status: res.status, json: (await res.json()) as { output?: string; error?: string } };
};

beforeAll(async () => {
  ({ sim, c } = await startTestSim({ host: "127.0.104.9", timing: { replicaColdStartMs: 50 } }));
  sfsId = await c.createVolume({ type: "NVMe_Shared", name: "sfs", size: 100 });
  sfsRoot = fs.mkdtempSync(path.join(os.tmpdir(), "replica-stand-in-"));
  standIn = await startReplicaStandIn({ host: "127.0.104.9", verda: sim, sfsDir: (id) => path.join(sfsRoot, id), inferenceKey: KEY });
});
afterAll(async () => {
  await standIn?.close();
  await sim?.close();
  fs.rmSync(sfsRoot, { recursive: true, force: true });
});

describe("replica stand-in", () => {
  it("serves a prompt only with the key and a running replica, and writes the output into the mounted SFS", async () => {
    const name = "worker-h100-spot";
    expect((await c.call("POST", "/container-deployments", deployment(name, ["python3", "main.py", "--output-directory", "/mnt/sfs/outputs"]))).status).toBe(201);
    const cold = await prompt(name);
    expect(cold.status).toBe(503);
    expect(cold.json.error).toContain("no running replica");
    await c.call("PATCH", `/container-deployments/${name}/scaling`, { min_replica_count: 1 });
    await waitFor(async () => (sim.state().container_deployments[0]!.replicas.some((r) => r.status === "running") ? true : undefined), 3000, "a running replica");
    expect((await prompt(name, "wrong")).status).toBe(401);
    expect((await prompt("no-such-deployment")).status).toBe(404);
    const served = await prompt(name);
    expect(served.status).toBe(200);
    const [record] = standIn.served();
    expect(record).toMatchObject({ deployment: name, volumeId: sfsId, sfsPath: served.json.output });
    expect(record!.sfsPath).toMatch(/^outputs\/ComfyUI_\w+_00001_\.png$/);
    const written = fs.readFileSync(path.join(sfsRoot, sfsId, record!.sfsPath));
    expect(createHash("sha256").update(written).digest("hex")).toBe(record!.sha256);
  });

  it("refuses a deployment whose outputs would stay in the container, naming why", async () => {
    const name = "worker-no-output-dir";
    expect((await c.call("POST", "/container-deployments", { ...deployment(name, ["python3", "main.py"]), scaling: { ...deployment(name, []).scaling, min_replica_count: 1 } })).status).toBe(201);
    await waitFor(async () => (sim.state().container_deployments.find((d) => d.name === name)!.replicas.some((r) => r.status === "running") ? true : undefined), 3000, "a running replica");
    const r = await prompt(name);
    expect(r.status).toBe(500);
    expect(r.json.error).toContain("no --output-directory");
  });
});
