// Instance and Volume lifecycles through the real client against the simulator, including the
// workshop layout (SFS + scratch + instance) and the delete rules for volumes.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { instanceProvider, volumeProvider, type InstanceInputs, type VolumeInputs } from "../../infra/providers";
import { must, startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
// Every request the client sent must conform to Verda's OpenAPI document (and so must the answers).
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});
beforeEach(() => {
  h.sim.clearFaults();
  h.resetCounters();
});

const gpu = (hostname: string, extra: Partial<InstanceInputs> = {}): InstanceInputs => ({
  instanceType: "1H100.80S.22V",
  image: "ubuntu-24.04-cuda-12.8-open-docker",
  hostname,
  locationCode: "FIN-01",
  osVolume: { name: `${hostname}-os`, size: 60 },
  ...extra,
});

async function createVolume(inputs: VolumeInputs) {
  const checked = await volumeProvider.check!({} as VolumeInputs, inputs);
  expect(checked.failures).toEqual([]);
  return must(await volumeProvider.create(checked.inputs!));
}

async function createInstance(inputs: InstanceInputs) {
  const checked = await instanceProvider.check!({} as InstanceInputs, inputs);
  expect(checked.failures).toEqual([]);
  return must(await instanceProvider.create(checked.inputs!));
}

describe("workshop layout", () => {
  it("creates SFS, scratch and instance; deleting the instance removes only its OS volume", async () => {
    const sfs = await createVolume({ name: "workshop-sfs", size: 100, type: "NVMe_Shared", locationCode: "FIN-01", permanent: false });
    expect(sfs.outs).toMatchObject({ status: "created", type: "NVMe_Shared" });
    const scratch = await createVolume({ name: "scratch", size: 200, type: "NVMe", locationCode: "FIN-01" });
    expect(scratch.outs.status).toBe("detached");

    const inputs = gpu("workshop-gpu", { existingVolumes: [scratch.id], tags: { phase: "testing" } });
    const created = await createInstance(inputs);
    expect(created.outs).toMatchObject({ instanceId: created.id, status: "running" });
    expect(created.outs.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(created.outs.osVolumeId).toBeTruthy();
    expect(created.outs.pricePerHour).toBeGreaterThan(0);

    // Attach the SFS to the running instance in place.
    const sfsNews = { ...(sfs.outs as VolumeInputs), instanceIds: [created.id] };
    expect(await volumeProvider.diff!(sfs.id, sfs.outs, sfsNews)).toEqual({ changes: true, replaces: [] });
    const attached = must({ id: sfs.id, ...(await volumeProvider.update!(sfs.id, sfs.outs, sfsNews)) });
    expect(attached.outs).toMatchObject({ status: "exported", attachedInstanceIds: [created.id] });
    expect(attached.outs.mountCommand).toContain(attached.outs.pseudoPath!);

    // Tags change in place; read reflects them.
    const tagged = { ...inputs, tags: { phase: "workshop", owner: "ops" } };
    expect(await instanceProvider.diff!(created.id, created.outs, tagged)).toMatchObject({ changes: true, replaces: [] });
    const updated = must({ id: created.id, ...(await instanceProvider.update!(created.id, created.outs, tagged)) });
    const read = await instanceProvider.read!(created.id, updated.outs);
    expect(read.inputs!.tags).toEqual({ phase: "workshop", owner: "ops" });

    // Delete: explicit volume_ids (only the OS volume) and delete_permanently.
    await instanceProvider.delete!(created.id, read.props!);
    const deleteCall = h.exchanges.find((x) => x.method === "PUT" && x.path === "/v1/instances");
    expect(deleteCall?.requestBody).toEqual({ action: "delete", id: created.id, volume_ids: [created.outs.osVolumeId], delete_permanently: true });

    const osVolume = await h.direct.getVolume(created.outs.osVolumeId!);
    expect(osVolume === undefined || osVolume.status === "deleted").toBe(true);
    const sfsAfter = await h.direct.getVolume(sfs.id);
    const scratchAfter = await h.direct.getVolume(scratch.id);
    expect(sfsAfter?.status).not.toBe("deleted");
    expect(scratchAfter?.status).toBe("detached");
    expect((await instanceProvider.read!(created.id, read.props!)).id).toBe("");
    await instanceProvider.delete!(created.id, read.props!); // already deleted: no error

    // SFS: grow in place, then delete (detaches first), permanently; scratch to trash.
    const grown = must({ id: sfs.id, ...(await volumeProvider.update!(sfs.id, attached.outs, { ...sfsNews, size: 150, instanceIds: [] })) });
    expect(grown.outs.size).toBe(150);
    await volumeProvider.delete!(sfs.id, { ...grown.outs, permanent: true });
    expect((await h.direct.getVolume(sfs.id))?.is_permanently_deleted).toBe(true);
    await volumeProvider.delete!(scratch.id, scratch.outs);
    const trashed = await h.direct.getVolume(scratch.id);
    expect(trashed?.status).toBe("deleted");
    expect(trashed?.is_permanently_deleted).toBe(false);
    await volumeProvider.delete!(scratch.id, scratch.outs); // already in trash: no error
    expect((await volumeProvider.read!(scratch.id, scratch.outs)).id).toBe("");
  });
});

describe("block volume attachment", () => {
  it("explains Verda's shut-down rule, then attaches and detaches once the instance is offline", async () => {
    const gpuNode = await createInstance(gpu("block-gpu"));
    const disk = await createVolume({ name: "block-disk", size: 20, locationCode: "FIN-01", permanent: true });
    const wanted = { ...(disk.outs as VolumeInputs), instanceIds: [gpuNode.id] };
    await expect(volumeProvider.update!(disk.id, disk.outs, wanted)).rejects.toThrow(/needs the instance shut down; attach block volumes at instance creation with Instance.existingVolumes/);

    await h.direct.instanceAction({ action: "shutdown", id: gpuNode.id, delete_permanently: false });
    await new Promise((r) => setTimeout(r, 100));
    const attached = await volumeProvider.update!(disk.id, disk.outs, wanted);
    expect(attached.outs).toMatchObject({ status: "attached", attachedInstanceIds: [gpuNode.id] });
    await volumeProvider.delete!(disk.id, attached.outs!); // detaches from the offline instance first
    expect((await h.direct.getVolume(disk.id))?.is_permanently_deleted).toBe(true);
    await instanceProvider.delete!(gpuNode.id, gpuNode.outs);
  });
});

describe("failures", () => {
  it("503 no capacity on create names the type and location", async () => {
    h.sim.setFaults({ type: "no_capacity", instance_type: "1A100.22V", location_code: "FIN-02" });
    await expect(createInstance(gpu("cap-test", { instanceType: "1A100.22V", locationCode: "FIN-02" }))).rejects.toThrow(
      /No capacity for instance type 1A100\.22V in location FIN-02/,
    );
    expect(h.metrics.calls["POST /v1/instances"]).toBe(1); // not retried
  });

  it("an instance landing in error is reported and cleaned up", async () => {
    h.sim.setFaults({ type: "instance_outcome", outcome: "installation_failed", hostname: "broken-gpu", count: 1 });
    await expect(createInstance(gpu("broken-gpu"))).rejects.toThrow(/ended in status "installation_failed"/);
    expect(h.sim.state().instances.filter((i) => i.hostname === "broken-gpu")).toEqual([]);
  });

  it("an instance stuck in provisioning times out but stays tracked by id", async () => {
    process.env.VERDA_INSTANCE_TIMEOUT_MS = "300";
    try {
      h.sim.setFaults({ type: "instance_outcome", outcome: "stuck_provisioning", hostname: "stuck-gpu", count: 1 });
      const error = (await createInstance(gpu("stuck-gpu")).catch((e: unknown) => e)) as Error & { id?: string };
      expect(error.message).toMatch(/Timed out .* stuck-gpu/);
      expect(error.id).toBeTruthy();
      await instanceProvider.delete!(error.id!, { osVolumeId: undefined } as never);
    } finally {
      process.env.VERDA_INSTANCE_TIMEOUT_MS = "5000";
    }
  });

  it("500 twice then success creates exactly one volume", async () => {
    h.sim.setFaults({ type: "http", method: "POST", path: "/v1/volumes", status: 500, count: 2 });
    const before = h.sim.state().volumes.length;
    const vol = await createVolume({ name: "retry-vol", size: 10, locationCode: "FIN-01" });
    expect(h.metrics.calls["POST /v1/volumes"]).toBe(3);
    expect(h.metrics.backoffMs).toBeGreaterThan(0);
    expect(h.sim.state().volumes.length).toBe(before + 1);
    await volumeProvider.delete!(vol.id, { ...vol.outs, permanent: true });
  });

  it("500 twice then success deploys exactly one instance", async () => {
    h.sim.setFaults({ type: "http", method: "POST", path: "/v1/instances", status: 500, count: 2 });
    const created = await createInstance(gpu("flaky-gpu"));
    expect(h.metrics.calls["POST /v1/instances"]).toBe(3);
    expect(h.metrics.calls["GET /v1/instances"]).toBe(2); // looked for an instance the failed POST may have made
    expect(h.sim.state().instances.filter((i) => i.hostname === "flaky-gpu")).toHaveLength(1);
    await instanceProvider.delete!(created.id, created.outs);
  });

  it("429 with Retry-After: the client waits, then succeeds", async () => {
    h.sim.setFaults({ type: "http", method: "GET", path: "/v1/instances/{instance_id}", status: 429, code: "rate_limit_exceeded", retry_after: 1, count: 1 });
    const created = await createInstance(gpu("ratelimited-gpu"));
    expect(created.outs.status).toBe("running");
    expect(h.metrics.backoffMs).toBeGreaterThanOrEqual(950);
    await instanceProvider.delete!(created.id, created.outs);
  });

  it("token expiry mid-run: a 401 triggers one re-authentication and the lifecycle continues", async () => {
    const vol = await createVolume({ name: "token-vol", size: 10, locationCode: "FIN-01" });
    h.sim.expireTokens(true); // access and refresh tokens both dead
    const read = await volumeProvider.read!(vol.id, vol.outs);
    expect(read.id).toBe(vol.id);
    expect(h.metrics.reauthentications).toBe(1);
    await volumeProvider.delete!(vol.id, { ...vol.outs, permanent: true });
  });

  it("out-of-band deletion of an instance is noticed by read", async () => {
    const created = await createInstance(gpu("oob-gpu"));
    await h.direct.instanceAction({ action: "delete", id: created.id, volume_ids: [created.outs.osVolumeId!], delete_permanently: true });
    await new Promise((r) => setTimeout(r, 100));
    expect((await instanceProvider.read!(created.id, created.outs)).id).toBe("");
    await instanceProvider.delete!(created.id, created.outs);
  });
});

describe("bad input fails in check before any mutating call", () => {
  const cases: [string, () => Promise<{ failures?: { property: string; reason: string }[] }>, string, RegExp][] = [
    ["unknown instance type", () => instanceProvider.check!({} as InstanceInputs, gpu("gpu-x", { instanceType: "9Z999.1V" })), "instanceType", /not in Verda's catalogue/],
    ["unknown location", () => instanceProvider.check!({} as InstanceInputs, gpu("gpu-x", { locationCode: "MARS-01" })), "locationCode", /not a Verda location; use one of FIN-01/],
    ["bad hostname", () => instanceProvider.check!({} as InstanceInputs, gpu("gpu_1!")), "hostname", /letters, digits/],
    ["zero OS volume", () => instanceProvider.check!({} as InstanceInputs, gpu("gpu-x", { osVolume: { name: "os", size: 0 } })), "osVolume.size", /greater than 0/],
    ["negative volume", () => volumeProvider.check!({} as VolumeInputs, { name: "v", size: -1, locationCode: "FIN-01" }), "size", /greater than 0/],
    ["unknown volume location", () => volumeProvider.check!({} as VolumeInputs, { name: "v", size: 10, locationCode: "NOWHERE" }), "locationCode", /not a Verda location/],
    [
      "SFS shrink",
      () => volumeProvider.check!({ name: "sfs", size: 500, type: "NVMe_Shared", locationCode: "FIN-01" }, { name: "sfs", size: 100, type: "NVMe_Shared", locationCode: "FIN-01" }),
      "size",
      /cannot shrink from 500 to 100/,
    ],
  ];
  for (const [label, run, property, reason] of cases) {
    it(label, async () => {
      const result = await run();
      expect(result.failures).toContainEqual({ property, reason: expect.stringMatching(reason) });
      expect(h.mutatingCalls()).toEqual([]);
    });
  }
});
