// SfsShare against the simulator: before anything mounts the SFS, the instance is allowed on it (Verda's
// "share settings"; the API attaches the SFS to the instance). An instance made out of band without the
// SFS (an adopted app instance) gets it shared; an instance that already has it costs no mutating call;
// an API refusal fails with the exact console step; delete never revokes.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sfsShareProvider, type SfsShareInputs } from "../../infra/providers/sfs-share";
import { attachedInstanceIds } from "../../infra/providers/volume";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ host: "127.0.103.10" });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => h.sim.clearFaults());
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

/** Out of band, as in the console: an SFS and a running CPU instance that does not have it. */
async function existing(hostname: string, withSfs = false) {
  const sfsId = await h.direct.createVolume({ type: "NVMe_Shared", location_code: "FIN-01", size: 220, name: `PROD_SFS-${hostname}` });
  await waitFor(async () => String((await h.direct.getVolume(sfsId))?.status) !== "ordered");
  const instanceId = await h.direct.deployInstance({
    instance_type: "CPU.8V.32G",
    image: "ubuntu-24.04",
    hostname,
    location_code: "FIN-01",
    description: "the app",
    ssh_key_ids: [],
    ...(withSfs ? { existing_volumes: [sfsId] } : {}),
  });
  await waitFor(async () => (await h.direct.getInstance(instanceId))?.status === "running");
  const inputs: SfsShareInputs = { sfsId, instanceId, hostname, providerVersion: PROVIDER_VERSION };
  return { sfsId, instanceId, inputs };
}

async function waitFor(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("timed out waiting for the simulator");
}

const sharedWith = async (sfsId: string) => attachedInstanceIds((await h.direct.getVolume(sfsId))!);

describe("SfsShare", () => {
  it("shares the SFS with an instance that does not have it yet (attach), and waits until the SFS lists it", async () => {
    const e = await existing("quiet-city-purrs-fin-01");
    expect(await sharedWith(e.sfsId)).toEqual([]);
    h.resetCounters();
    const result = await sfsShareProvider.create!(e.inputs);
    expect(result.outs?.sharedByStack).toBe(true);
    expect(h.mutatingCalls()).toEqual(["PUT /v1/volumes"]);
    expect(await sharedWith(e.sfsId)).toEqual([e.instanceId]);
  });

  it("makes no mutating call when the instance already has the SFS (attached at deploy)", async () => {
    const e = await existing("day-worker", true);
    h.resetCounters();
    const result = await sfsShareProvider.create!(e.inputs);
    expect(result.outs?.sharedByStack).toBe(false);
    expect(h.mutatingCalls()).toEqual([]);
  });

  it("fails with the exact console step when the API refuses, and nothing is shared", async () => {
    const e = await existing("intelligent-rain-shrinks-fin-01");
    h.sim.setFaults({ type: "http", method: "PUT", path: "/v1/volumes", status: 403, message: "share settings are managed in the console" });
    const error = await sfsShareProvider.create!(e.inputs).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error?.message).toContain(`Cannot share SFS PROD_SFS-intelligent-rain-shrinks-fin-01 with instance intelligent-rain-shrinks-fin-01 (${e.instanceId})`);
    expect(error?.message).toContain("Share settings -> add instance intelligent-rain-shrinks-fin-01");
    expect(error?.message).toContain("nothing was mounted");
    expect(await sharedWith(e.sfsId)).toEqual([]);
  });

  it("never revokes the share on delete (an adopted instance keeps its models)", async () => {
    const e = await existing("keeps-models", true);
    h.resetCounters();
    await sfsShareProvider.delete!(`${e.sfsId}:${e.instanceId}`, { ...e.inputs, sharedByStack: false });
    expect(h.mutatingCalls()).toEqual([]);
    expect(await sharedWith(e.sfsId)).toEqual([e.instanceId]);
  });
});
