// ContainerDeployment, Secret, FileSecret and RegistryCredentials through the real client against the
// simulator: console drift is read back and reverted, scaling changes in place with one PATCH, secret
// values travel only to their own endpoint, and every request and answer conforms to the document.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  containerDeploymentProvider,
  fileSecretProvider,
  registryCredentialsProvider,
  secretProvider,
  type ContainerDeploymentInputs,
  type ContainerDeploymentOutputs,
} from "../../infra/providers";
import { must, startHarness, type Harness } from "./harness";

const HF_TOKEN = "hf_lifecycleSecret_9f8e7d6c5b4a";
const GHCR_TOKEN = "ghp_lifecycleRegistryToken_1234";
const FILE_TEXT = "file-secret-contents-5150";

let h: Harness;
let sfsId: string;
beforeAll(async () => {
  h = await startHarness({ host: "127.0.104.2", timing: { replicaColdStartMs: 30 } });
  sfsId = await h.direct.createVolume({ type: "NVMe_Shared", name: "models", size: 100, location_code: "FIN-01" });
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

/** Simulator request log: method + path of every API request since `from`. */
const requestsSince = (from: number) => h.sim.exchanges().slice(from).map((x) => `${x.method} ${x.url.split("?")[0]}`).filter((r) => !r.endsWith("/oauth2/token"));

function desired(secretName: string, credentials: string, fileSecret: string): ContainerDeploymentInputs {
  return {
    name: "comfyume-h200-spot",
    compute: { name: "H200", size: 1 },
    isSpot: true,
    registryCredentials: credentials,
    containers: [
      {
        image: "ghcr.io/ahelme/comfyume-worker:v1",
        port: 8188,
        healthcheck: { path: "/" },
        command: ["python3", "/workspace/ComfyUI/main.py", "--listen", "0.0.0.0", "--port", "8188", "--output-directory", "/mnt/sfs/outputs"],
        env: { HF_HOME: "/mnt/sfs/cache/huggingface" },
        secretEnv: { HF_TOKEN: secretName },
        mounts: [
          { type: "scratch", path: "/data" },
          { type: "memory", sizeMb: 64 },
          { type: "shared", path: "/mnt/sfs", volumeId: sfsId },
          { type: "secret", path: "/secret-files", secretName: fileSecret },
        ],
      },
    ],
    scaling: { minReplicas: 0, maxReplicas: 10, scaleDownDelaySeconds: 300, queueLoadThreshold: 2 },
  };
}

describe("serverless providers against the simulator", () => {
  let secretName: string;
  let credentialsName: string;
  let fileSecretName: string;
  let deployment: { id: string; outs: ContainerDeploymentOutputs };
  let inputs: ContainerDeploymentInputs;

  it("creates a secret, file secret and registry credentials; their values reach only their own endpoint", async () => {
    const from = h.sim.exchanges().length;
    const secret = await secretProvider.check!({} as never, { name: "hf-token", value: HF_TOKEN });
    expect(secret.failures).toEqual([]);
    secretName = must(await secretProvider.create(secret.inputs!)).id;
    expect(secretName).toMatch(/^hf-token-[0-9a-f]{6}$/);
    const creds = await registryCredentialsProvider.check!({} as never, { name: "ghcr", type: "ghcr", username: "ahelme", accessToken: GHCR_TOKEN });
    expect(creds.failures).toEqual([]);
    credentialsName = must(await registryCredentialsProvider.create(creds.inputs!)).id;
    fileSecretName = must(await fileSecretProvider.create({ name: "worker-files", files: { "token.txt": FILE_TEXT } })).id;

    const carriers = (text: string) => h.sim.exchanges().slice(from).filter((x) => (x.requestBody + x.responseBody + x.url).includes(text)).map((x) => `${x.method} ${x.url}`);
    expect(carriers(HF_TOKEN)).toEqual(["POST /v1/secrets"]);
    expect(carriers(GHCR_TOKEN)).toEqual(["POST /v1/container-registry-credentials"]);
    expect(carriers(Buffer.from(FILE_TEXT).toString("base64"))).toEqual(["POST /v1/file-secrets"]);
    // What the client reports to observers (logs, metrics) is redacted.
    expect(JSON.stringify(h.exchanges)).not.toContain(HF_TOKEN);
    expect(JSON.stringify(h.exchanges)).not.toContain(GHCR_TOKEN);
  });

  it("refuses a plain environment variable that looks like a secret, naming the fix", async () => {
    const bad = desired(secretName, credentialsName, fileSecretName);
    bad.containers[0]!.env = { HF_TOKEN: "hf_plain" };
    const { failures } = await containerDeploymentProvider.check!({} as never, bad);
    expect(failures?.map((f) => f.reason).join("\n")).toContain("env.HF_TOKEN looks sensitive: store it in a verda.Secret and reference it as secretEnv");
  });

  it("creates the deployment referencing the secret by name (env type secret), at zero replicas", async () => {
    const checked = await containerDeploymentProvider.check!({} as never, desired(secretName, credentialsName, fileSecretName));
    expect(checked.failures).toEqual([]);
    inputs = checked.inputs!;
    const from = h.sim.exchanges().length;
    deployment = must(await containerDeploymentProvider.create(inputs));
    expect(deployment.outs).toMatchObject({ endpointBaseUrl: "https://containers.datacrunch.io/comfyume-h200-spot", containerNames: ["comfyume-worker-0"] });
    const body = h.sim.exchanges().slice(from).find((x) => x.method === "POST")!.requestBody;
    expect(JSON.parse(body).containers[0].env).toContainEqual({ name: "HF_TOKEN", type: "secret", value_or_reference_to_secret: secretName });
    expect(body).not.toContain(HF_TOKEN);
    const read = await containerDeploymentProvider.read!(deployment.id, deployment.outs);
    expect(await containerDeploymentProvider.diff!(deployment.id, read.props!, inputs)).toMatchObject({ changes: false, replaces: [] });
  });

  it("reads a console edit back as drift, and update reverts it in place (no delete, no create)", async () => {
    // The drift: --output-directory dropped and the queue threshold changed by hand.
    await h.direct.serverless.patchDeployment("comfyume-h200-spot", {
      containers: [{ name: "comfyume-worker-0", entrypoint_overrides: { enabled: true, cmd: ["python3", "/workspace/ComfyUI/main.py", "--port", "8188"] } }],
    });
    await h.direct.serverless.patchScaling("comfyume-h200-spot", { scaling_triggers: { queue_load: { threshold: 5 } } });

    const read = await containerDeploymentProvider.read!(deployment.id, deployment.outs);
    expect(read.inputs!.containers[0]!.command).not.toContain("--output-directory");
    expect(read.inputs!.scaling.queueLoadThreshold).toBe(5);
    const diff = await containerDeploymentProvider.diff!(deployment.id, read.props!, inputs);
    expect(diff).toMatchObject({ changes: true, replaces: [] });

    const from = h.sim.exchanges().length;
    deployment = { id: deployment.id, outs: (await containerDeploymentProvider.update!(deployment.id, read.props!, inputs)).outs as ContainerDeploymentOutputs };
    expect(requestsSince(from)).toEqual(["PATCH /v1/container-deployments/comfyume-h200-spot", "PATCH /v1/container-deployments/comfyume-h200-spot/scaling"]);
    const again = await containerDeploymentProvider.read!(deployment.id, deployment.outs);
    expect(await containerDeploymentProvider.diff!(deployment.id, again.props!, inputs)).toMatchObject({ changes: false });
  });

  it("changes scaling in place with exactly one PATCH and no DELETE", async () => {
    const scaled = { ...inputs, scaling: { ...inputs.scaling, minReplicas: 2 } };
    const diff = await containerDeploymentProvider.diff!(deployment.id, deployment.outs, scaled);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const from = h.sim.exchanges().length;
    deployment = { id: deployment.id, outs: (await containerDeploymentProvider.update!(deployment.id, deployment.outs, scaled)).outs as ContainerDeploymentOutputs };
    expect(requestsSince(from)).toEqual(["PATCH /v1/container-deployments/comfyume-h200-spot/scaling"]);
    expect(h.sim.state().container_deployments[0]!.replicas).toHaveLength(2);
  });

  it("replaces only for a new name, and says why", async () => {
    const diff = await containerDeploymentProvider.diff!(deployment.id, deployment.outs, { ...inputs, name: "comfyume-h200-on-demand" });
    expect(diff).toMatchObject({ changes: true, replaces: ["name"], deleteBeforeReplace: false });
    const image = { ...inputs, containers: [{ ...inputs.containers[0]!, image: "ghcr.io/ahelme/comfyume-worker:v2" }], compute: { name: "B300", size: 1 } };
    expect(await containerDeploymentProvider.diff!(deployment.id, deployment.outs, image)).toMatchObject({ changes: true, replaces: [] });
  });

  it("a new secret value replaces the secret under a new name; the old one is deleted once unused", async () => {
    const olds = { name: "hf-token", value: HF_TOKEN, verdaName: secretName };
    expect(await secretProvider.diff!(secretName, olds, { name: "hf-token", value: "hf_rotated" })).toMatchObject({ changes: true, replaces: ["value"], deleteBeforeReplace: false });
    expect((await secretProvider.read!(secretName, olds)).id).toBe(secretName);
    await h.direct.serverless.deleteFromStore("file-secret", "nonexistent-abc123"); // 404 is fine
  });

  it("a file secret whose files were changed at Verda reads back as drift (replace)", async () => {
    const olds = { name: "worker-files", files: { "token.txt": FILE_TEXT }, verdaName: fileSecretName };
    expect((await fileSecretProvider.read!(fileSecretName, olds)).inputs).toMatchObject({ files: { "token.txt": FILE_TEXT } });
    const consoleName = "console-files-abc123";
    await h.direct.serverless.createInStore("file-secret", { name: consoleName, files: [{ file_name: "other.txt", base64_content: "eA==" }] });
    const read = await fileSecretProvider.read!(consoleName, { ...olds, verdaName: consoleName });
    expect(read.inputs!.files).toEqual({ "other.txt": "" });
    expect(await fileSecretProvider.diff!(consoleName, read.props!, { name: "worker-files", files: { "token.txt": FILE_TEXT } })).toMatchObject({ changes: true, replaces: ["files"] });
    await fileSecretProvider.delete!(consoleName, read.props!);
  });

  it("deletes everything; a second delete and a read of the gone resources are harmless", async () => {
    await containerDeploymentProvider.delete!(deployment.id, deployment.outs);
    expect(h.sim.state().meters.filter((m) => m.resource_type === "replica" && m.running)).toEqual([]);
    expect((await containerDeploymentProvider.read!(deployment.id, deployment.outs)).id).toBe("");
    await containerDeploymentProvider.delete!(deployment.id, deployment.outs);
    await secretProvider.delete!(secretName, {} as never);
    await fileSecretProvider.delete!(fileSecretName, {} as never);
    await registryCredentialsProvider.delete!(credentialsName, {} as never);
    expect(h.sim.state()).toMatchObject({ secrets: [], file_secrets: [], registry_credentials: [] });
    expect((await secretProvider.read!(secretName, { name: "hf-token", value: HF_TOKEN, verdaName: secretName })).id).toBe("");
  });
});
