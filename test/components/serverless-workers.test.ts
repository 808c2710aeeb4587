// ServerlessWorkers under Pulumi mocks: one deployment per GPU × pricing with the SFS mounted by id,
// sensitive values only as Verda secrets referenced by name (never plain env, the value a Pulumi secret),
// and bad settings refused by name before any resource is declared.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ServerlessWorkers, type ServerlessWorkersArgs } from "../../components/serverless-workers";

const HF_TOKEN = "hf_componentSecret_314159";
const recorded: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        recorded.push({ type: args.type, name: args.name, inputs: args.inputs });
        const verdaName = typeof args.inputs.name === "string" ? `${args.inputs.name}-abc123` : undefined;
        return { id: `${args.name}-id`, state: { ...args.inputs, verdaName, endpointBaseUrl: `https://containers.datacrunch.io/${String(args.inputs.name)}` } };
      },
      call: (args) => args.inputs,
    },
    "comfyume",
    "workshop-month",
    false,
  );
});

function args(overrides: Partial<ServerlessWorkersArgs> = {}): ServerlessWorkersArgs {
  return {
    namePrefix: "comfyume-worker",
    options: [
      { gpu: "H200", spot: true },
      { gpu: "H200", spot: false },
      { gpu: "B300", spot: true },
      { gpu: "B300", spot: false },
    ],
    image: "ghcr.io/ahelme/comfyume-worker:v1",
    command: ["python3", "/workspace/ComfyUI/main.py", "--output-directory", "/mnt/sfs/outputs"],
    sfsVolumeId: "sfs-0001",
    env: { HF_HOME: "/mnt/sfs/cache/huggingface" },
    secrets: { HF_TOKEN: pulumi.secret(HF_TOKEN) },
    registry: { type: "ghcr", username: "ahelme", accessToken: pulumi.secret("ghp_token") },
    scaling: { minReplicas: 0, maxReplicas: 10 },
    ...overrides,
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("ServerlessWorkers", () => {
  it("declares one deployment per GPU × pricing, the SFS by id, the HF token as a referenced secret", async () => {
    const workers = new ServerlessWorkers("workers", args());
    const endpoints = await new Promise<Record<string, string>>((resolve) => pulumi.all(workers.endpoints).apply(resolve));
    await settle();
    const deployments = recorded.filter((r) => r.type.endsWith("verda:ContainerDeployment"));
    expect(deployments.map((d) => d.inputs.name).sort()).toEqual(["comfyume-worker-b300-on-demand", "comfyume-worker-b300-spot", "comfyume-worker-h200-on-demand", "comfyume-worker-h200-spot"]);
    expect(Object.keys(endpoints).sort()).toHaveLength(4);
    for (const d of deployments) {
      const [container] = d.inputs.containers as { env: Record<string, string>; secretEnv: Record<string, string>; mounts: { type: string; volumeId?: string }[] }[];
      expect(container!.secretEnv).toEqual({ HF_TOKEN: "comfyume-worker-hf-token-abc123" });
      expect(container!.env).toEqual({ HF_HOME: "/mnt/sfs/cache/huggingface" });
      expect(container!.mounts).toContainEqual({ type: "shared", path: "/mnt/sfs", volumeId: "sfs-0001" });
      expect(d.inputs.registryCredentials).toBe("comfyume-worker-registry-abc123");
      expect(JSON.stringify(d.inputs)).not.toContain(HF_TOKEN);
    }
    const secrets = recorded.filter((r) => r.type.endsWith("verda:Secret"));
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0]!.inputs.value)).toContain("1b47061264138c4ac30d75fd1eb44270"); // wrapped as a secret
  });

  it("refuses sensitive plain env, duplicate options and no options, naming each setting", () => {
    expect(() => new ServerlessWorkers("bad-env", args({ env: { HF_TOKEN: "plain" } }))).toThrow(/env\.HF_TOKEN looks sensitive: store it in a verda\.Secret/);
    expect(() => new ServerlessWorkers("dup", args({ options: [{ gpu: "H200", spot: true }, { gpu: "h200", spot: true }] }))).toThrow(/options repeat comfyume-worker-h200-spot/);
    expect(() => new ServerlessWorkers("none", args({ options: [] }))).toThrow(/options must list at least one/);
    expect(() => new ServerlessWorkers("both", args({ env: { HF_TOKEN_FILE_PATH: "/x" }, secrets: { HF_TOKEN_FILE_PATH: pulumi.secret("v") } }))).toThrow(/set both in env and secretEnv/);
    expect(() => new ServerlessWorkers("scale", args({ scaling: { minReplicas: 3, maxReplicas: 1 } }))).toThrow(/minReplicas \(3\) and maxReplicas \(1\)/);
    expect(() => new ServerlessWorkers("shm", args({ shmMb: 100 }))).toThrow(/sizeMb must be one of 64/);
  });
});
