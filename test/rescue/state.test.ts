// What the rescue reads from a day stack's exported state, and what it removes from it.
import { describe, expect, it } from "vitest";
import { planRemovals, removeResources } from "../../infra/rescue/state-edit";
import { nameOf, rescueTarget, revealSecrets, type StackExport, type StateResource } from "../../infra/rescue/state";

const SIG = "4dabf18193072939515e22adb298388d";
const secret = (v: unknown) => ({ [SIG]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });
const encrypted = { [SIG]: "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" };
const urn = (type: string, name: string) => `urn:pulumi:workshop-day::comfyume::comfyume:verda:GpuWorker$${type}::${name}`;

const MELLO = "203.0.113.2";
const WORKER = "203.0.113.10";
const conn = (host: string) => ({ host, port: 22, user: "root", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----", hostKey: "ssh-ed25519 AAAA", dialErrorLimit: 5, perDialTimeout: 10 });

function dayState(): StackExport {
  const inst = urn("pulumi-nodejs:dynamic/verda:Instance", "worker-instance");
  const scratch = urn("pulumi-nodejs:dynamic/verda:Volume", "worker-scratch");
  const cmd = "pulumi-nodejs:dynamic/remote:Command";
  const resources: StateResource[] = [
    { urn: "urn:pulumi:workshop-day::comfyume::pulumi:pulumi:Stack::comfyume-workshop-day", type: "pulumi:pulumi:Stack", outputs: { scratchVolumeId: "vol-scratch" } },
    {
      urn: "urn:pulumi:workshop-day::comfyume::pulumi:pulumi:StackReference::idle", type: "pulumi:pulumi:StackReference", id: "idle",
      outputs: { name: "idle", outputs: { r2Endpoint: "https://acct.eu.r2.cloudflarestorage.com", bucketNames: { userFiles: "user-files" }, r2AccessKeyId: secret("AKID"), r2SecretAccessKey: secret("SECRETKEY"), melloAddress: MELLO } },
    },
    { urn: scratch, type: "pulumi-nodejs:dynamic/verda:Volume", id: "vol-scratch", outputs: { volumeId: "vol-scratch", locationCode: "FIN-01" } },
    {
      urn: inst, type: "pulumi-nodejs:dynamic/verda:Instance", id: "inst-1", dependencies: [scratch],
      outputs: { instanceId: "inst-1", hostname: "comfyume-workshop-day", locationCode: "FIN-01", sshKeyIds: ["key-1", "key-2"], existingVolumes: ["vol-sfs", "vol-scratch"], ip: WORKER },
    },
    { urn: urn(cmd, "worker-host-key"), type: cmd, dependencies: [inst], outputs: { connection: secret({ ...conn(WORKER), hostKey: undefined }), create: "true" } },
    { urn: urn("pulumi-nodejs:dynamic/remote:Files", "worker-scripts-files"), type: "pulumi-nodejs:dynamic/remote:Files", dependencies: [inst, scratch], outputs: { connection: secret(conn(WORKER)) } },
    { urn: urn(cmd, "worker-backup-cron"), type: cmd, dependencies: [inst], outputs: { connection: secret(conn(WORKER)), create: "install", delete: "remove the cron job" } },
    { urn: urn(cmd, "worker-mount-sfs"), type: cmd, dependencies: [inst], outputs: { connection: secret(conn(WORKER)), create: "mount" } },
    { urn: urn(cmd, "worker-backup-mello-before-delete"), type: cmd, dependencies: [inst, scratch], replaceWith: [inst], outputs: { connection: secret(conn(MELLO)), create: "true", delete: "backup-mello.sh" } },
    {
      urn: urn(cmd, "worker-backup-before-delete"), type: cmd, dependencies: [inst, scratch, urn(cmd, "worker-backup-mello-before-delete")],
      propertyDependencies: { connection: [inst] }, outputs: { connection: secret(conn(WORKER)), stdin: secret("R2_ACCESS_KEY_ID=AKID\n"), delete: "backup-to-r2.sh; backup-mello.sh" },
    },
    // A guard that names the instance neither by dependency nor by id (e.g. by hostname) is still the worker's.
    { urn: urn("pulumi-nodejs:dynamic/verda:InstanceGuard", "worker-guard"), type: "pulumi-nodejs:dynamic/verda:InstanceGuard", outputs: { hostname: "comfyume-workshop-day" } },
  ];
  return { version: 3, deployment: { manifest: {}, resources } };
}

describe("rescue: reading the state", () => {
  it("finds the gone instance, the scratch, the worker's SSH settings and R2 from the idle reference", () => {
    const t = rescueTarget(revealSecrets(dayState()) as StackExport, "workshop-day");
    expect(t.instance).toMatchObject({ instanceId: "inst-1", locationCode: "FIN-01", sshKeyIds: ["key-1", "key-2"], hostname: "comfyume-workshop-day" });
    expect(t.scratchVolumeId).toBe("vol-scratch");
    expect(t.ssh).toMatchObject({ user: "root", port: 22, dialErrorLimit: 5, perDialTimeout: 10 });
    expect(t.ssh.privateKey).toContain("OPENSSH PRIVATE KEY");
    expect(t.r2).toEqual({ endpoint: "https://acct.eu.r2.cloudflarestorage.com", userFilesBucket: "user-files", accessKeyId: "AKID", secretAccessKey: "SECRETKEY" });
  });

  it("refuses an export whose secrets are still encrypted, naming --show-secrets", () => {
    const exp = dayState();
    (exp.deployment.resources![1]!.outputs!.outputs as Record<string, unknown>).r2SecretAccessKey = encrypted;
    expect(() => revealSecrets(exp)).toThrow(/--show-secrets/);
  });

  it("names what is missing: no instance, no R2 settings, a scratch the instance never had", () => {
    const none = revealSecrets(dayState()) as StackExport;
    none.deployment.resources = none.deployment.resources!.filter((r) => !r.type.endsWith("verda:Instance"));
    expect(() => rescueTarget(none, "workshop-day")).toThrow(/holds no Verda instance.*scripts\/pulumi destroy --stack workshop-day/);
    const noR2 = revealSecrets(dayState()) as StackExport;
    delete (noR2.deployment.resources![1]!.outputs!.outputs as Record<string, unknown>).r2Endpoint;
    expect(() => rescueTarget(noR2, "workshop-day")).toThrow(/lack r2Endpoint/);
    const odd = revealSecrets(dayState()) as StackExport;
    odd.deployment.resources![3]!.outputs!.existingVolumes = ["vol-sfs", "vol-other"];
    expect(() => rescueTarget(odd, "workshop-day")).toThrow(/scratch vol-scratch is not among the instance's volumes/);
  });
});

describe("rescue: the state edit", () => {
  it("removes the instance, its guard, the instance-side hook and commands whose delete needs the gone host; keeps mello's hook and the scratch", () => {
    const removals = planRemovals(revealSecrets(dayState()) as StackExport, "workshop-day");
    expect(removals.map((r) => nameOf(r.urn)).sort()).toEqual(["worker-backup-before-delete", "worker-backup-cron", "worker-guard", "worker-instance"]);
    for (const r of removals) expect(r.why).not.toBe("");
  });

  it("drops every reference to the removed resources from the others, and keeps secrets as they were", () => {
    const exp = dayState();
    const removals = planRemovals(revealSecrets(exp) as StackExport, "workshop-day");
    const edited = removeResources(exp, removals.map((r) => r.urn));
    const gone = new Set(removals.map((r) => r.urn));
    const left = edited.deployment.resources!;
    expect(left).toHaveLength(exp.deployment.resources!.length - removals.length);
    for (const r of left) expect([...(r.dependencies ?? []), ...((r.replaceWith as string[]) ?? [])].filter((u) => gone.has(u))).toEqual([]);
    const mello = left.find((r) => nameOf(r.urn) === "worker-backup-mello-before-delete")!;
    expect(mello.dependencies).toEqual([urn("pulumi-nodejs:dynamic/verda:Volume", "worker-scratch")]);
    expect(JSON.stringify(mello.outputs)).toContain('"plaintext"'); // untouched: the edit never decrypts
    expect(exp.deployment.resources!.some((r) => nameOf(r.urn) === "worker-instance")).toBe(true); // input not mutated
  });

  it("refuses when the state changed (a resource to remove is gone) or a child would be orphaned", () => {
    const exp = dayState();
    expect(() => removeResources(exp, ["urn:pulumi:workshop-day::comfyume::x::missing"])).toThrow(/state changed/);
    exp.deployment.resources!.push({ urn: "urn:child", type: "x", parent: exp.deployment.resources![3]!.urn });
    expect(() => removeResources(exp, [exp.deployment.resources![3]!.urn])).toThrow(/child of removed/);
  });
});
