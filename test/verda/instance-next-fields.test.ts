// Editing an instance's description or its SSH key list must never replace a running worker (a replace backs it
// up and deletes it mid-day). Verda cannot change either on a running instance (its only instance mutations are
// actions and tags), so the edit is recorded in state with no API call, the provider warns that it takes effect
// on the next instance, and a real replace key still replaces.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { instanceProvider, type InstanceInputs, type InstanceOutputs } from "../../infra/providers";
import { must, PUBLIC_KEY, startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => h.resetCounters());
afterEach(() => vi.restoreAllMocks());

async function runningWorker(extra: Partial<InstanceInputs>): Promise<{ id: string; inputs: InstanceInputs; outs: InstanceOutputs }> {
  const news = { instanceType: "1H100.80S.22V", image: "ubuntu-24.04", hostname: "next-fields", locationCode: "FIN-01", ...extra } as InstanceInputs;
  const checked = await instanceProvider.check!({} as InstanceInputs, news);
  expect(checked.failures).toEqual([]);
  const created = must(await instanceProvider.create(checked.inputs!));
  return { id: created.id, inputs: checked.inputs!, outs: created.outs };
}

describe("description and SSH keys are next-instance fields", () => {
  it("an edit is an update (no replace) that calls no Verda API and warns that it applies to the next instance", async () => {
    const key1 = await h.direct.createSshKey({ name: "admin-1", key: PUBLIC_KEY });
    const key2 = await h.direct.createSshKey({ name: "admin-2", key: PUBLIC_KEY.replace("workshop@", "second@") });
    const { id, inputs, outs } = await runningWorker({ description: "day 1", sshKeyIds: [key1] });
    const warnings = vi.spyOn(console, "error").mockImplementation(() => undefined);

    const edited = { ...inputs, description: "day 2", sshKeyIds: [key1, key2] };
    expect(await instanceProvider.diff!(id, outs, edited)).toMatchObject({ changes: true, replaces: [], deleteBeforeReplace: false });
    const warning = warnings.mock.calls.map((call) => String(call[0])).join("\n");
    expect(warning).toContain("instance next-fields: description and sshKeyIds changed");
    expect(warning).toContain("takes effect on the next instance");

    h.resetCounters();
    const updated = must({ id, ...(await instanceProvider.update!(id, outs, edited)) });
    expect(h.metrics.calls, "recording a next-instance field must call no Verda API").toEqual({});
    expect(updated.outs).toMatchObject({ instanceId: id, status: "running", description: "day 2", sshKeyIds: [key1, key2], ip: outs.ip });
    expect(h.sim.state().instances.filter((i) => i.status === "running").map((i) => i.id)).toEqual([id]);
    expect(await instanceProvider.diff!(id, updated.outs, edited)).toMatchObject({ changes: false });

    // Removing the description from the program removes it from state too (no diff on every later run).
    const { description: _removed, ...withoutDescription } = edited;
    const cleared = must({ id, ...(await instanceProvider.update!(id, updated.outs, withoutDescription as InstanceInputs)) });
    expect(cleared.outs).not.toHaveProperty("description");
    expect(await instanceProvider.diff!(id, cleared.outs, withoutDescription as InstanceInputs)).toMatchObject({ changes: false });
  });

  it("a real replace key in the same edit still replaces", async () => {
    const { id, inputs, outs } = await runningWorker({ hostname: "next-fields-2", description: "a" });
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const diff = await instanceProvider.diff!(id, outs, { ...inputs, description: "b", image: "ubuntu-22.04" });
    expect(diff).toMatchObject({ changes: true, replaces: ["image"] });
  });
});
