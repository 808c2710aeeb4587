// Adoption in the providers against the simulator (the engine-level walk is test/engine/adopt-sfs.test.ts):
// an instance and volumes made out of band are found by id or exact name, every difference is a check
// failure naming the setting and its fix, an adopted resource never diffs as a replace, and neither
// update nor delete calls anything that changes Verda.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { instanceProvider, volumeProvider, type InstanceInputs, type InstanceOutputs, type VolumeInputs } from "../../infra/providers";
import type { AdoptInput } from "../../infra/providers/adopt";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ host: "127.0.103.20" });
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

async function waitFor(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("timed out waiting for the simulator");
}

const gpuAdopt = (ref: { id?: string; name?: string }): AdoptInput => ({
  ...ref,
  settings: { instanceType: "comfyume:gpu.instanceType", hostname: "comfyume:gpu.hostname", locationCode: "comfyume:gpu.location", isSpot: "comfyume:gpu.spot", image: "comfyume:gpu.image", adopt: "comfyume:gpu.adopt" },
  stack: "prod-day",
  what: "the instance",
});

describe("adopting an instance made in the console", () => {
  let instanceId: string;
  const declared: InstanceInputs = { instanceType: "CPU.8V.32G", image: "ubuntu-24.04", hostname: "quiet-city-purrs-fin-01", locationCode: "FIN-01", isSpot: false, providerVersion: PROVIDER_VERSION };

  beforeAll(async () => {
    instanceId = await h.direct.deployInstance({ instance_type: "CPU.8V.32G", image: "ubuntu-24.04", hostname: "quiet-city-purrs-fin-01", location_code: "FIN-01", description: "prod app", ssh_key_ids: [] });
    await waitFor(async () => (await h.direct.getInstance(instanceId))?.status === "running");
  });

  it("fails the check on every difference, each naming the setting, both values and the fix", async () => {
    const news = { ...declared, instanceType: "CPU.4V.16G", locationCode: "FIN-02", adopt: gpuAdopt({ name: "quiet-city-purrs-fin-01" }) };
    h.resetCounters();
    const { failures } = await instanceProvider.check!({} as InstanceInputs, news);
    const reasons = (failures ?? []).map((f) => f.reason);
    expect(reasons).toHaveLength(2);
    expect(reasons.join("\n")).toContain(`comfyume:gpu.instanceType: configured "CPU.4V.16G", but the instance (name 'quiet-city-purrs-fin-01') has "CPU.8V.32G"`);
    expect(reasons.join("\n")).toContain("scripts/pulumi config set --path 'comfyume:gpu.instanceType' 'CPU.8V.32G' --stack prod-day");
    expect(reasons.join("\n")).toContain("scripts/pulumi config set --path 'comfyume:gpu.location' 'FIN-01' --stack prod-day");
    expect(h.mutatingCalls()).toEqual([]);
  });

  it("adopts it by hostname without deploying; a later edit is no replace; update and delete change nothing", async () => {
    h.resetCounters();
    const adopted = await instanceProvider.create!({ ...declared, adopt: gpuAdopt({ name: "quiet-city-purrs-fin-01" }) });
    expect(adopted.id).toBe(instanceId);
    expect(adopted.outs?.adopted).toBe(true);
    const outs = adopted.outs as InstanceOutputs;
    const diff = await instanceProvider.diff!(instanceId, outs, { ...declared, instanceType: "1H100.80S.22V", image: "other", adopt: gpuAdopt({ id: instanceId }) });
    expect(diff.replaces).toEqual([]);
    expect(diff.changes).toBe(false);
    const updated = await instanceProvider.update!(instanceId, outs, { ...declared, providerVersion: "next", adopt: gpuAdopt({ id: instanceId }) });
    expect(updated.outs?.providerVersion).toBe("next");
    expect(updated.outs?.instanceType).toBe("CPU.8V.32G");
    await instanceProvider.delete!(instanceId, outs);
    expect(h.mutatingCalls()).toEqual([]);
    expect((await h.direct.getInstance(instanceId))?.status).toBe("running");
  });
});

describe("adopting a volume by name", () => {
  const sfs = (name: string): VolumeInputs => ({ name, size: 220, type: "NVMe_Shared", locationCode: "FIN-01", adopt: { name, what: "the SFS" } });

  it("refuses a name that matches no volume or several, naming the fix; creates nothing", async () => {
    const a = await h.direct.createVolume({ type: "NVMe_Shared", location_code: "FIN-01", size: 220, name: "CLONE_SFS-twice" });
    const b = await h.direct.createVolume({ type: "NVMe_Shared", location_code: "FIN-01", size: 220, name: "CLONE_SFS-twice" });
    h.resetCounters();
    const twice = await volumeProvider.check!({} as VolumeInputs, sfs("CLONE_SFS-twice"));
    expect(twice.failures?.[0]?.reason).toContain(`2 volumes are named 'CLONE_SFS-twice' (${a}, ${b})`);
    expect(twice.failures?.[0]?.reason).toContain("adopt by id");
    const none = await volumeProvider.check!({} as VolumeInputs, sfs("PROD_SFS-missing"));
    expect(none.failures?.[0]?.reason).toContain("no volume named 'PROD_SFS-missing' exists at Verda");
    await expect(volumeProvider.create!(sfs("PROD_SFS-missing"))).rejects.toThrow(/no volume named/);
    expect(h.mutatingCalls()).toEqual([]);
  });
});
