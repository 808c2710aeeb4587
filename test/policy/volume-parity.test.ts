// The scratch guardrail predicts replacements without calling the provider; keep it in step with
// the Verda Volume provider's own diff.
import { describe, expect, it } from "vitest";
import { volumeProvider, type VolumeInputs, type VolumeOutputs } from "../../infra/providers/volume";
import { volumeReplaceReasons } from "../../policy/rules/scratch-replacement";

const base: VolumeInputs = { name: "worker-scratch", type: "NVMe", size: 200, locationCode: "FIN-01" };

describe("scratch replacement prediction matches the Volume provider", () => {
  it.each<[string, VolumeInputs]>([
    ["same inputs", base],
    ["new location", { ...base, locationCode: "FIN-02" }],
    ["new type", { ...base, type: "NVMe_Shared" }],
    ["larger size", { ...base, size: 400 }],
    ["smaller size", { ...base, size: 100 }],
    ["new name", { ...base, name: "other" }],
    ["permanent delete flag", { ...base, permanent: true }],
  ])("%s", async (_what, news) => {
    const olds: VolumeOutputs = { ...base, volumeId: "vol-1", status: "detached", attachedInstanceIds: [] };
    const diff = await volumeProvider.diff!("vol-1", olds, news);
    expect(volumeReplaceReasons({ ...base }, { ...news }).length > 0).toBe((diff.replaces ?? []).length > 0);
  });
});
