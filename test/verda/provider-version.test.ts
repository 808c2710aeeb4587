// Every Verda dynamic resource records the provider version. State written by older code (another version, or
// none at all) diffs as an in-place change, never a replace, and the update records the new version calling no
// Verda API, so the engine stores the current provider code in state (delete then runs the current code).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  instanceProvider, sshKeyProvider, startupScriptProvider, volumeProvider,
  type InstanceInputs, type SshKeyInputs, type StartupScriptInputs, type VolumeInputs,
} from "../../infra/providers";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { must, PUBLIC_KEY, startHarness, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => h.resetCounters());

type Provider<I, O> = {
  check?: (olds: I, news: I) => Promise<{ inputs?: I; failures?: unknown[] }>;
  create: (inputs: I) => Promise<{ id: string; outs?: O }>;
  diff?: (id: string, olds: O, news: I) => Promise<{ changes?: boolean; replaces?: string[] }>;
  update?: (id: string, olds: O, news: I) => Promise<{ outs?: O }>;
};

/** Creates the resource with the current code, then replays `olds` as if an older provider version wrote them. */
async function versionRollout<I extends object, O extends object>(provider: Provider<I, O>, news: I) {
  const checked = await provider.check!({} as I, news);
  expect(checked.failures).toEqual([]);
  expect(checked.inputs).toMatchObject({ providerVersion: PROVIDER_VERSION });
  const created = must(await provider.create(checked.inputs!));
  expect(created.outs).toMatchObject({ providerVersion: PROVIDER_VERSION });
  expect(await provider.diff!(created.id, created.outs as O, checked.inputs!)).toMatchObject({ changes: false });

  const { providerVersion: _dropped, ...unversioned } = created.outs as O & { providerVersion?: string };
  for (const olds of [unversioned as O, { ...created.outs, providerVersion: "0.0.0-old" } as O]) {
    const diff = await provider.diff!(created.id, olds, checked.inputs!);
    expect(diff.changes).toBe(true);
    expect(diff.replaces ?? []).toEqual([]);
    h.resetCounters();
    const updated = await provider.update!(created.id, olds, checked.inputs!);
    expect(h.metrics.calls, "an update for a new provider version must call no Verda API").toEqual({});
    expect(updated.outs).toEqual({ ...olds, providerVersion: PROVIDER_VERSION });
  }
}

describe("a new provider version is an in-place update that calls nothing", () => {
  it("Instance", async () => {
    await versionRollout(instanceProvider, {
      instanceType: "1H100.80S.22V", image: "ubuntu-24.04", hostname: "version-gpu", locationCode: "FIN-01", description: "d",
    } as InstanceInputs);
  });

  it("Volume", async () => {
    await versionRollout(volumeProvider, { name: "version-scratch", size: 50, type: "NVMe", locationCode: "FIN-01" } as VolumeInputs);
  });

  it("SshKey", async () => {
    await versionRollout(sshKeyProvider, { name: "version-key", publicKey: PUBLIC_KEY } as SshKeyInputs);
  });

  it("StartupScript", async () => {
    await versionRollout(startupScriptProvider, { name: "version-script", script: "#!/bin/bash\ntrue\n" } as StartupScriptInputs);
  });
});
