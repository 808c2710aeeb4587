// Serverless pieces the phases rely on, through the real client against the simulator: a deployment create
// answered "created, then 5xx" leaves exactly one tracked deployment; the day's DeploymentScaling sets the
// scaling with one PATCH and returns it to zero on delete without ever deleting the deployment; the money
// preflight reads the serverless compute's availability. Every exchange conforms to the OpenAPI document.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { containerDeploymentProvider, deploymentScalingProvider, type ContainerDeploymentInputs, type DeploymentScalingInputs } from "../../infra/providers";
import { containerToApi, registryToApi, scalingToApi } from "../../infra/providers/container-shape";
import { checkServerlessCompute } from "../../infra/money/serverless";
import { checkDeploymentsMountSfs } from "../../infra/phases/serverless";
import { verdaForMoney } from "../../infra/money/verda-reads";
import { must, startHarness, type Harness } from "./harness";

let h: Harness;
let sfsId: string;
beforeAll(async () => {
  h = await startHarness({ host: "127.0.104.5", timing: { replicaColdStartMs: 20 } });
  sfsId = await h.direct.createVolume({ type: "NVMe_Shared", name: "models", size: 100, location_code: "FIN-01" });
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  h.sim.clearFaults();
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

const writesSince = (from: number) =>
  h.sim.exchanges().slice(from).map((x) => `${x.method} ${x.url.split("?")[0]} ${x.status}`).filter((r) => !r.startsWith("GET ") && !r.includes("/oauth2/token"));

async function desired(name: string): Promise<ContainerDeploymentInputs> {
  const checked = await containerDeploymentProvider.check!({} as never, {
    name,
    compute: { name: "H200", size: 1 },
    isSpot: true,
    containers: [{ image: "ghcr.io/ahelme/comfyume-worker:v1", port: 8188, healthcheck: { path: "/" }, mounts: [{ type: "shared", path: "/mnt/sfs", volumeId: sfsId }] }],
    scaling: { minReplicas: 0, maxReplicas: 0 },
  });
  expect(checked.failures).toEqual([]);
  return checked.inputs!;
}

describe("ContainerDeployment create when the answer is lost", () => {
  it("created, then 5xx: exactly one deployment, tracked by the resource", async () => {
    h.sim.setFaults({ type: "http", method: "POST", path: "/v1/container-deployments", status: 500, after_apply: true, count: 1 });
    const from = h.sim.exchanges().length;
    const created = must(await containerDeploymentProvider.create(await desired("lost-answer-h200-spot")));
    expect(created.id).toBe("lost-answer-h200-spot");
    expect(created.outs.endpointBaseUrl).toBe("https://containers.datacrunch.io/lost-answer-h200-spot");
    expect(h.sim.state().container_deployments.filter((d) => d.name === "lost-answer-h200-spot")).toHaveLength(1);
    // The client's retry of the POST finds the name taken (409); the provider looks the name up and keeps it.
    expect(writesSince(from)).toEqual(["POST /v1/container-deployments 500", "POST /v1/container-deployments 409"]);
  });

  it("a deployment left by an earlier run whose create answer was lost is taken over, not duplicated or refused", async () => {
    const inputs = await desired("left-over-h200-spot");
    // An earlier `up` whose POST took effect but whose process died before recording it (state has nothing).
    const older = { ...inputs.containers[0]!, image: "ghcr.io/ahelme/comfyume-worker:v0" };
    await h.direct.serverless.createDeployment({ name: inputs.name, is_spot: true, is_verda_io: false, compute: inputs.compute, container_registry_settings: registryToApi(undefined), containers: [containerToApi(older)], scaling: scalingToApi(inputs.scaling) });
    // The next `up` retries the create (the resource is not in state): it finds the name and tracks it.
    const from = h.sim.exchanges().length;
    const retried = must(await containerDeploymentProvider.create(inputs));
    expect(retried.id).toBe("left-over-h200-spot");
    // Brought to the configured settings in place (the image differs), never a second create.
    expect(writesSince(from)).toEqual(["PATCH /v1/container-deployments/left-over-h200-spot 200"]);
    const live = h.sim.state().container_deployments.filter((d) => d.name === "left-over-h200-spot");
    expect(live).toHaveLength(1);
    expect(JSON.stringify(live[0]!.containers[0]!.image)).toContain("comfyume-worker:v1");
  });
});

describe("DeploymentScaling: the day's scaling on the month's deployment", () => {
  const name = "scaled-h200-spot";
  let scaling: { id: string; outs: DeploymentScalingInputs };

  it("create sets the day's scaling with exactly one PATCH", async () => {
    must(await containerDeploymentProvider.create(await desired(name)));
    const checked = await deploymentScalingProvider.check!({} as never, { deployment: name, scaling: { minReplicas: 1, maxReplicas: 10 } });
    expect(checked.failures).toEqual([]);
    expect(checked.inputs!.restScaling).toMatchObject({ minReplicas: 0, maxReplicas: 0 });
    const from = h.sim.exchanges().length;
    scaling = must(await deploymentScalingProvider.create(checked.inputs!));
    expect(writesSince(from)).toEqual([`PATCH /v1/container-deployments/${name}/scaling 200`]);
    expect(h.sim.state().container_deployments.find((d) => d.name === name)!.scaling).toMatchObject({ min_replica_count: 1, max_replica_count: 10 });
    const read = await deploymentScalingProvider.read!(scaling.id, scaling.outs);
    expect(await deploymentScalingProvider.diff!(scaling.id, read.props!, checked.inputs!)).toMatchObject({ changes: false });
  });

  it("delete returns the deployment to zero replicas with one PATCH and never deletes it", async () => {
    const from = h.sim.exchanges().length;
    await deploymentScalingProvider.delete!(scaling.id, scaling.outs);
    expect(writesSince(from)).toEqual([`PATCH /v1/container-deployments/${name}/scaling 200`]);
    const live = h.sim.state().container_deployments.find((d) => d.name === name)!;
    expect(live.scaling).toMatchObject({ min_replica_count: 0, max_replica_count: 0 });
    // A deployment the month stack already deleted: nothing to scale, and no error.
    await h.direct.serverless.deleteDeployment(name);
    await expect(deploymentScalingProvider.delete!(scaling.id, scaling.outs)).resolves.toBeUndefined();
  });

  it("create refuses a deployment the month stack has not made, naming the fix", async () => {
    const checked = await deploymentScalingProvider.check!({} as never, { deployment: "not-made-yet", scaling: { minReplicas: 1, maxReplicas: 2 } });
    await expect(deploymentScalingProvider.create(checked.inputs!)).rejects.toThrow(/does not exist at Verda: bring the month stack up first/);
  });
});

describe("the day's SFS check at the API level (stand-in for the instance path's marker file)", () => {
  const credentials = () => ({ clientId: h.sim.clientId, clientSecret: h.sim.clientSecret, baseUrl: h.sim.baseUrl });

  it("passes for deployments on the month's SFS; names the deployment, both SFS ids and the fix otherwise", async () => {
    must(await containerDeploymentProvider.create(await desired("sfs-check-h200-spot")));
    await expect(checkDeploymentsMountSfs(credentials(), ["sfs-check-h200-spot"], sfsId, "/mnt/sfs")).resolves.toBeUndefined();
    // The month's SFS was re-created (a new id) while the deployment still mounts the old one.
    const other = await h.direct.createVolume({ type: "NVMe_Shared", name: "models-2", size: 100, location_code: "FIN-01" });
    await expect(checkDeploymentsMountSfs(credentials(), ["sfs-check-h200-spot"], other, "/mnt/sfs")).rejects.toThrow(
      new RegExp(`deployment sfs-check-h200-spot mounts ${sfsId} at /mnt/sfs, not the month's SFS ${other}.*up --refresh --stack <env>-month`),
    );
    await expect(checkDeploymentsMountSfs(credentials(), ["not-there"], sfsId, "/mnt/sfs")).rejects.toThrow(/deployment not-there does not exist at Verda/);
    await expect(checkDeploymentsMountSfs(credentials(), ["sfs-check-h200-spot"], "00000000-0000-4000-8000-000000000000", "/mnt/sfs")).rejects.toThrow(/the month's SFS 00000000-0000-4000-8000-000000000000 does not exist at Verda/);
  });
});

describe("serverless compute preflight", () => {
  const plan = (gpu: string, gpus = 1) => ({ deployments: [{ name: `w-${gpu.toLowerCase()}-spot`, gpu, gpus, spot: true, minReplicas: 1 }], prewarmMinutes: 0, burstReplicaHours: 0 });
  const api = () => verdaForMoney({ clientId: h.sim.clientId, clientSecret: h.sim.clientSecret, baseUrl: h.sim.baseUrl }).api;

  it("passes when Verda lists the compute as available; names the deployment and the fix when not", async () => {
    await expect(checkServerlessCompute(api(), "testing-day", plan("H200"))).resolves.toEqual(["w-h200-spot: H200 × 1 available"]);
    h.sim.setFaults({ type: "no_capacity", instance_type: "H200" });
    await expect(checkServerlessCompute(api(), "testing-day", plan("H200"))).rejects.toThrow(/w-h200-spot: H200 × 1 is not available now[\s\S]*Pick an available GPU in comfyume:serverless\.deployments/);
    await expect(checkServerlessCompute(api(), "testing-day", plan("X900"))).rejects.toThrow(/offers no serverless compute X900 × 1/);
  });
});
