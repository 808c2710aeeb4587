// Pure provider logic: validation, diff decisions, preview unknowns and request building.
import { describe, expect, it } from "vitest";
import { deployBody, instanceProvider, validateInstanceInputs, type InstanceInputs } from "../../infra/providers/instance";
import { UNKNOWN } from "../../infra/providers/shared";
import { sshKeyProvider } from "../../infra/providers/ssh-key";
import { hostnameProblem } from "../../infra/providers/validation";
import { attachedInstanceIds, validateVolumeInputs, volumeProvider, type VolumeInputs } from "../../infra/providers/volume";

const base: InstanceInputs = { instanceType: "1H100.80S.22V", image: "ubuntu-24.04", hostname: "gpu-1", locationCode: "FIN-01", osVolume: { name: "gpu-1-os", size: 60 } };

describe("instance inputs", () => {
  it("applies Verda's hostname rule", () => {
    expect(hostnameProblem("workshop-gpu-1")).toBeUndefined();
    expect(hostnameProblem("-gpu")).toMatch(/start or end/);
    expect(hostnameProblem("gpu_1")).toMatch(/letters, digits/);
    expect(hostnameProblem("12345")).toMatch(/one letter/);
  });

  it("names the property and the fix", () => {
    const failures = validateInstanceInputs({ ...base, hostname: "bad_name", osVolume: { name: "os", size: 0 }, contract: "YEARLY" as never });
    expect(failures.map((f) => f.property).sort()).toEqual(["contract", "hostname", "osVolume.size"]);
    expect(failures.find((f) => f.property === "osVolume.size")!.reason).toMatch(/greater than 0/);
  });

  it("skips unknown preview values", () => {
    expect(validateInstanceInputs({ ...base, hostname: UNKNOWN, osVolume: UNKNOWN as never })).toEqual([]);
  });

  it("builds a deploy body with explicit defaults and no undefined fields", () => {
    const body = deployBody({ ...base, tags: { team: "ws", freeform: "" } });
    expect(body).toEqual({
      instance_type: "1H100.80S.22V", image: "ubuntu-24.04", hostname: "gpu-1", location_code: "FIN-01", description: "",
      ssh_key_ids: [], os_volume: { name: "gpu-1-os", size: 60 }, is_spot: false, tags: [{ key: "team", value: "ws" }, { key: "freeform" }],
    });
  });

  it("diff replaces on create-time fields, updates tags in place, handles unknowns", async () => {
    const olds = { ...base, instanceId: "i", status: "running", sshKeyIds: ["a", "b"] };
    expect(await instanceProvider.diff!("i", olds, { ...base, sshKeyIds: ["b", "a"] })).toMatchObject({ changes: false, replaces: [] });
    expect(await instanceProvider.diff!("i", olds, { ...base, sshKeyIds: ["b", "a"], tags: { a: "1" } })).toMatchObject({ changes: true, replaces: [] });
    expect(await instanceProvider.diff!("i", olds, { ...base, sshKeyIds: ["a", "b"], instanceType: "1A100.22V" })).toMatchObject({ changes: true, replaces: ["instanceType"], deleteBeforeReplace: false });
    expect(await instanceProvider.diff!("i", olds, { ...base, sshKeyIds: ["a", "b"], hostname: UNKNOWN })).toMatchObject({ changes: true, replaces: ["hostname"] });
    const withVolumes = { ...olds, existingVolumes: ["v"] };
    expect(await instanceProvider.diff!("i", withVolumes, { ...base, sshKeyIds: ["a", "b"], existingVolumes: ["v"], image: "ubuntu-22.04" })).toMatchObject({ deleteBeforeReplace: true });
  });

  it("diff asks for an update when a timed-out create left a not-yet-running instance", async () => {
    const olds = { ...base, instanceId: "i", status: "unknown" };
    expect(await instanceProvider.diff!("i", olds, base)).toMatchObject({ changes: true, replaces: [] });
  });

  it("check without credentials validates locally and calls no API", async () => {
    delete process.env.VERDA_CLIENT_ID;
    const result = await instanceProvider.check!({} as InstanceInputs, { ...base, hostname: "-x", __provider: "blob" } as InstanceInputs);
    expect(result.failures).toHaveLength(1);
    expect(result.inputs).not.toHaveProperty("__provider");
  });
});

describe("volume inputs", () => {
  const vol: VolumeInputs = { name: "sfs", size: 100, type: "NVMe_Shared", locationCode: "FIN-01" };

  it("rejects shrinking and non-positive sizes", () => {
    expect(validateVolumeInputs(vol, { ...vol, size: 50 })[0]).toMatchObject({ property: "size", reason: expect.stringMatching(/cannot shrink from 100 to 50/) });
    expect(validateVolumeInputs({}, { ...vol, size: 0 })[0]).toMatchObject({ property: "size" });
    expect(validateVolumeInputs({}, { ...vol, size: -5 })).toHaveLength(1);
    expect(validateVolumeInputs(vol, { ...vol, size: 200 })).toEqual([]);
  });

  it("allows several instances only for an SFS", () => {
    expect(validateVolumeInputs({}, { ...vol, instanceIds: ["a", "b"] })).toEqual([]);
    expect(validateVolumeInputs({}, { ...vol, type: "NVMe", instanceIds: ["a", "b"] })[0]!.property).toBe("instanceIds");
  });

  it("diff grows and re-attaches in place, replaces on type or location", async () => {
    const olds = { ...vol, volumeId: "v", status: "created", attachedInstanceIds: [] };
    expect(await volumeProvider.diff!("v", olds, { ...vol, size: 200, instanceIds: ["a"], name: "sfs2" })).toEqual({ changes: true, replaces: [] });
    expect(await volumeProvider.diff!("v", olds, { ...vol, locationCode: "FIN-02" })).toEqual({ changes: true, replaces: ["locationCode"] });
    expect(await volumeProvider.diff!("v", olds, { ...vol })).toEqual({ changes: false, replaces: [] });
  });

  it("reads attachments from instance_id and instances in either form", () => {
    expect(attachedInstanceIds({ instance_id: "a", instances: ["b", { id: "c" }] } as never)).toEqual(["a", "b", "c"]);
  });
});

describe("ssh key inputs", () => {
  it("rejects a private key", async () => {
    const result = await sshKeyProvider.check!({} as never, { name: "k", publicKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc" });
    expect(result.failures![0]!.reason).toMatch(/PRIVATE key/);
  });
});
