// Runs the providers the way Pulumi's dynamic-provider host does: serialize, load the text with
// require-from-string, then drive the lifecycle (including 404 and retry paths) against the simulator.
// Catches code that only breaks after closure serialization (e.g. `class X extends Error`).
import * as pulumi from "@pulumi/pulumi";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { instanceProvider, sshKeyProvider, volumeProvider, type InstanceInputs, type SshKeyInputs, type VolumeInputs } from "../../infra/providers";
import { startHarness, PUBLIC_KEY, type Harness } from "./harness";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString: (code: string) => { handler: () => unknown } = require("require-from-string");

async function reload<T>(provider: T): Promise<T> {
  const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false });
  return requireFromString(serialized.text).handler() as T;
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  h.sim.clearFaults();
  expect(h.takeContractProblems().requests).toEqual([]);
});

describe("serialized providers", () => {
  it("SshKey: create, read after out-of-band delete, idempotent delete", async () => {
    const keys = await reload(sshKeyProvider);
    const created = await keys.create({ name: "serialized", publicKey: PUBLIC_KEY } as SshKeyInputs);
    await h.direct.deleteSshKey(created.id);
    expect((await keys.read!(created.id, created.outs)).id).toBe("");
    await keys.delete!(created.id, created.outs!);
  });

  it("Volume and Instance: retries, typed errors and deletes work after serialization", async () => {
    const volumes = await reload(volumeProvider);
    const instances = await reload(instanceProvider);
    h.sim.setFaults({ type: "http", method: "POST", path: "/v1/volumes", status: 500, count: 2 });
    const vol = await volumes.create({ name: "ser-scratch", size: 20, locationCode: "FIN-01", permanent: true } as VolumeInputs);
    const gpu = await instances.create({
      instanceType: "1H100.80S.22V", image: "ubuntu-24.04-cuda-12.8-open-docker", hostname: "ser-gpu", locationCode: "FIN-01",
      osVolume: { name: "ser-gpu-os", size: 60 }, existingVolumes: [vol.id],
    } as InstanceInputs);
    expect(gpu.outs!.status).toBe("running");
    await instances.delete!(gpu.id, gpu.outs!); // polls until GET answers 404
    expect((await instances.read!(gpu.id, gpu.outs)).id).toBe("");
    await volumes.delete!(vol.id, vol.outs!);
    await volumes.delete!(vol.id, vol.outs!);

    h.sim.setFaults({ type: "no_capacity", instance_type: "1A100.22V" });
    await expect(
      instances.create({ instanceType: "1A100.22V", image: "ubuntu-24.04", hostname: "ser-nocap", locationCode: "FIN-03" } as InstanceInputs),
    ).rejects.toThrow(/No capacity for instance type 1A100\.22V in location FIN-03/);
  });
});
