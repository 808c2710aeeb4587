// InstanceGuard against the simulator: its delete lets a destroy go on only while the worker instance
// is running; an instance gone out of band, shut down, or an API that does not answer stops it with a
// message naming the instance, the scratch that still holds the files, and the fix. The guard itself
// never changes anything at Verda.
import * as pulumi from "@pulumi/pulumi";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { instanceGuardProvider, type InstanceGuardInputs } from "../../infra/providers/instance-guard";
import { instanceProvider, volumeProvider, type InstanceInputs } from "../../infra/providers";
import { verdaRuntime } from "../../infra/providers/runtime";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { must, startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  h.sim.clearFaults();
});
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

/** A worker like the day stack's: a scratch attached at creation. */
async function worker(hostname: string) {
  const scratch = must(await volumeProvider.create({ name: `${hostname}-scratch`, size: 50, type: "NVMe", locationCode: "FIN-01" }));
  const inputs: InstanceInputs = {
    instanceType: "1A100.22V",
    image: "ubuntu-24.04-cuda-12.8-open-docker",
    hostname,
    locationCode: "FIN-01",
    osVolume: { name: `${hostname}-os`, size: 60 },
    existingVolumes: [scratch.id],
  };
  const instance = must(await instanceProvider.create(inputs));
  const guard: InstanceGuardInputs = { instanceId: instance.id, scratchVolumeId: scratch.id, stack: "workshop-day", providerVersion: PROVIDER_VERSION };
  return { instanceId: instance.id, scratchId: scratch.id, guard };
}

/** The guard's delete, as the engine runs it; the mutating calls it made. */
async function guardDelete(guard: InstanceGuardInputs): Promise<{ error?: Error; mutating: string[] }> {
  h.resetCounters();
  let error: Error | undefined;
  try {
    await instanceGuardProvider.delete!(`guard-${guard.instanceId}`, guard);
  } catch (e) {
    error = e as Error;
  }
  return { error, mutating: h.mutatingCalls() };
}

const volumeOf = (id: string) => h.sim.state().volumes.find((v) => v.id === id);

describe("InstanceGuard delete", () => {
  it("lets the destroy go on while the instance is running, changing nothing", async () => {
    const w = await worker("guard-running");
    const result = await guardDelete(w.guard);
    expect(result.error).toBeUndefined();
    expect(result.mutating).toEqual([]);
  });

  it("stops the destroy when the instance was evicted: names it, the scratch holding the files, and the rescue", async () => {
    const w = await worker("guard-evicted");
    h.sim.evictInstance(w.instanceId);
    const scratchBefore = volumeOf(w.scratchId);
    const result = await guardDelete(w.guard);
    expect(result.error?.message).toContain(`worker instance ${w.instanceId} is discontinued at Verda`);
    expect(result.error?.message).toContain(`NOTHING was deleted: the scratch volume ${w.scratchId} still holds the users' inputs and outputs`);
    expect(result.error?.message).toContain("npm run rescue -- --stack workshop-day");
    expect(result.error?.message).toContain("Do NOT `pulumi state delete` the backup hook");
    // Nothing else is touched: no call that changes anything, the scratch as it was.
    expect(result.mutating).toEqual([]);
    expect(volumeOf(w.scratchId)).toEqual(scratchBefore);
    expect(volumeOf(w.scratchId)?.status).not.toBe("deleted");
  });

  it("stops the destroy when the instance was deleted in the console (404)", async () => {
    const w = await worker("guard-deleted");
    await instanceProvider.delete!(w.instanceId, { osVolumeId: undefined } as never);
    const result = await guardDelete(w.guard);
    expect(result.error?.message).toMatch(new RegExp(`worker instance ${w.instanceId} (no longer exists at Verda \\(404\\)|is (discontinued|notfound|deleting) at Verda)`));
    expect(result.error?.message).toContain(`scratch volume ${w.scratchId}`);
    expect(result.mutating).toEqual([]);
    expect(volumeOf(w.scratchId)?.status).not.toBe("deleted");
  });

  it("stops the destroy for an instance that never existed, with the 404 named", async () => {
    const guard: InstanceGuardInputs = { instanceId: "00000000-0000-4000-8000-000000000001", scratchVolumeId: "vol-x", stack: "workshop-day", providerVersion: PROVIDER_VERSION };
    const result = await guardDelete(guard);
    expect(result.error?.message).toContain("worker instance 00000000-0000-4000-8000-000000000001 no longer exists at Verda (404)");
  });

  it("stops the destroy for a shut-down instance: it holds the scratch but cannot be reached", async () => {
    const w = await worker("guard-offline");
    await h.direct.instanceAction({ action: "shutdown", id: w.instanceId });
    for (let i = 0; i < 100 && (await h.direct.getInstance(w.instanceId))?.status !== "offline"; i++) await new Promise((r) => setTimeout(r, 20));
    const result = await guardDelete(w.guard);
    expect(result.error?.message).toContain(`worker instance ${w.instanceId} is offline (shut down)`);
    expect(result.error?.message).toContain("start it");
    expect(result.mutating).toEqual([]);
  });

  it("never goes on unverified: an API that keeps failing stops the destroy with the cause", async () => {
    const w = await worker("guard-api-down");
    h.sim.setFaults({ type: "http", method: "GET", path: `/v1/instances/${w.instanceId}`, status: 503, message: "maintenance" });
    const result = await guardDelete(w.guard);
    expect(result.error?.message).toContain(`could not ask Verda whether the worker instance ${w.instanceId} is running (503`);
    expect(result.error?.message).toContain("NOTHING was deleted");
    expect(result.error?.message).toContain("run the destroy again once the Verda API answers");
    expect(result.mutating).toEqual([]);
  });
});

describe("InstanceGuard as a resource", () => {
  it("replaces only for a new instance and records the provider version", async () => {
    const olds: InstanceGuardInputs = { instanceId: "a", scratchVolumeId: "v", stack: "workshop-day", providerVersion: "old" };
    expect(await instanceGuardProvider.diff!("g", olds, { ...olds, providerVersion: PROVIDER_VERSION })).toMatchObject({ changes: true, replaces: [] });
    expect(await instanceGuardProvider.diff!("g", olds, { ...olds, instanceId: "b" })).toMatchObject({ changes: true, replaces: ["instanceId"] });
    expect(await instanceGuardProvider.diff!("g", olds, olds)).toMatchObject({ changes: false });
    const checked = await instanceGuardProvider.check!(olds, { ...olds, instanceId: "" });
    expect(checked.failures).toEqual([{ property: "instanceId", reason: expect.stringContaining("instanceId is required") }]);
  });

  it("serializes without secrets", async () => {
    const secret = "sim-secret-should-never-serialize-guard";
    verdaRuntime().config = { clientSecret: secret };
    try {
      const serialized = await pulumi.runtime.serializeFunction(() => instanceGuardProvider, { allowSecrets: false });
      expect(serialized.text).toContain("could not ask Verda");
      expect(serialized.text).not.toContain(secret);
      expect(serialized.containsSecrets).toBe(false);
    } finally {
      verdaRuntime().config = {};
    }
  });
});
