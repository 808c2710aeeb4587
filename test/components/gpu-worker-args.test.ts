// GpuWorker built directly under Pulumi mocks: the nightly backups get the shrink check's settings
// (--shrink-tolerance, --accept-shrink) on every backup script, and bad settings are refused by name
// before any resource is declared.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { GpuWorker, type GpuWorkerArgs } from "../../components/gpu-worker";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWorkerWorkerWorkerWorkerWorkerWorkerWork";
const inputsByName = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        inputsByName.set(args.name, args.inputs);
        const state = { ...args.inputs, instanceId: "inst-1", ip: "203.0.113.10", volumeId: "vol-scratch", scriptId: "script-1", stdout: "", presentedHostKey: HOST_KEY };
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    "comfyume",
    "workshop-day",
    false,
  );
});

function args(backup: Partial<GpuWorkerArgs["backup"]> = {}): GpuWorkerArgs {
  const ssh = { user: "root", port: 22, privateKey: pulumi.secret("key"), dialErrorLimit: 3, perDialTimeout: 5 };
  return {
    instance: { instanceType: "1A100.22V", image: "ubuntu", hostname: "comfyume-workshop-day", description: "w", locationCode: "FIN-01", spot: false, osVolumeSizeGb: 100, sshKeyIds: ["k"] },
    hostPublicKey: HOST_KEY,
    sfs: { volumeId: "sfs-1", mountTarget: "nfs:/sfs" },
    scratch: { lifetime: "day", name: "scratch", sizeGb: 50, deletePermanently: false },
    ssh,
    mello: { ...ssh, host: "mello", hostKey: HOST_KEY },
    r2: { endpoint: "https://r2.example", accessKeyId: pulumi.secret("id"), secretAccessKey: pulumi.secret("secret"), buckets: { models: "m", cache: "c", workerContainer: "w", userFiles: "u" } },
    secrets: { redisPassword: pulumi.secret("r"), tailscaleAuthKey: pulumi.secret("t") },
    restore: { expectedTailscaleIp: "100.64.0.12", redisHost: "100.64.0.2", redisPort: 6379, healthTimeoutSeconds: 60, skip: [] },
    paths: { sfsMount: "/mnt/sfs", scratchMount: "/mnt/scratch", scriptsDir: "/opt/comfyume", melloScriptsDir: "/opt/comfyume", restoreLog: "/var/log/r.log" },
    backup: { setName: "comfyume-workshop-day", cronSchedule: "17 * * * *", ...backup },
    hostEnv: {},
    melloHostEnv: {},
    timeouts: { mountSeconds: 600, restoreSeconds: 3600, backupSeconds: 7200, hostKeyScanSeconds: 60 },
  };
}

/** The delete commands of both hooks once registered. */
async function hookDeletes(name: string): Promise<{ instance: string; mello: string }> {
  for (let i = 0; i < 100 && !inputsByName.has(`${name}-instance-guard`); i++) await new Promise((r) => setTimeout(r, 20));
  const del = (n: string) => String((inputsByName.get(n) ?? {}).delete ?? "");
  return { instance: del(`${name}-backup-before-delete`), mello: del(`${name}-backup-mello-before-delete`) };
}

describe("GpuWorker backup settings", () => {
  it("passes the shrink tolerance and each accepted set to every backup script", async () => {
    new GpuWorker("shrink", args({ shrinkTolerance: 0.3, acceptShrink: ["cache/comfyume-workshop-day", "scratch/outputs"] }));
    const { instance, mello } = await hookDeletes("shrink");
    const flags = "--shrink-tolerance '0.3' --accept-shrink 'cache/comfyume-workshop-day' --accept-shrink 'scratch/outputs'";
    const [, , sfsBackup, scratchBackup] = instance.split("\n");
    expect(sfsBackup).toMatch(/backup-to-r2\.sh' .* --worker-bucket 'w' --shrink-tolerance '0\.3' --accept-shrink/);
    expect(sfsBackup.endsWith(flags)).toBe(true);
    expect(scratchBackup.endsWith(flags)).toBe(true);
    expect(mello.endsWith(flags)).toBe(true);
  });

  it("leaves the scripts' defaults when nothing is set", async () => {
    new GpuWorker("defaults", args());
    const { instance, mello } = await hookDeletes("defaults");
    expect(instance).not.toContain("shrink");
    expect(mello).not.toContain("shrink");
  });

  it("refuses a tolerance outside 0..1 and an empty set name, naming the setting", () => {
    expect(() => new GpuWorker("bad", args({ shrinkTolerance: 1.5 }))).toThrow(/backup\.shrinkTolerance must be a fraction from 0 to 1 \(got 1\.5\)/);
    expect(() => new GpuWorker("bad2", args({ acceptShrink: [" "] }))).toThrow(/backup\.acceptShrink must list set names/);
  });
});
