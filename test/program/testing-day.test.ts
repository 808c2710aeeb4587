// Phase `testing-day`: cheap CPU default, first-contact host key, scratch kept for the month.
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PUB, DAY_SECRET_KEYS, SECRETS, dayValues } from "../support/fixtures";
import { STACK_OUTPUTS, isSecretWrapped, isVerda, plaintextView, promiseOf, runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram(
    "testing-day",
    {
      ...dayValues("testing"),
      "comfyume:scratch": { lifetime: "month" },
      "comfyume:gpu": { spot: true },
      // Loopback test hosts: connect to a local sshd, scripts in sandboxed roots.
      "comfyume:ssh": { hostOverride: "127.0.0.1", port: 2201 },
      "comfyume:hostEnv": { COMFYUME_ROOT: "/tmp/host-worker" },
      "comfyume:melloHostEnv": { COMFYUME_ROOT: "/tmp/host-mello" },
      "comfyume:paths": { melloScriptsDir: "/home/dev/comfyume-scripts" },
    },
    DAY_SECRET_KEYS,
  );
});

const unwrap = (v: unknown) => (isSecretWrapped(v) ? (v as { value: unknown }).value : v) as Record<string, unknown>;
const firstContactKey = ADMIN_PUB.split(" ").slice(0, 2).join(" "); // what the mocked ssh-keyscan printed

describe("testing-day", () => {
  it("rehearses on a cheap CPU spot instance by default", () => {
    const instance = run.byName("worker-instance");
    expect(isVerda(instance, "Instance")).toBe(true);
    expect(instance.inputs).toMatchObject({ instanceType: "CPU.4V.16G", image: "ubuntu-24.04", isSpot: true, contract: "SPOT" });
    expect(run.byName("month").inputs.name).toBe("organization/comfyume/testing-month");
  });

  it("attaches the month's scratch instead of creating one", async () => {
    expect(run.resources.some((r) => r.name === "worker-scratch")).toBe(false);
    expect(run.byName("worker-instance").inputs.existingVolumes).toEqual(["sfs-0001", STACK_OUTPUTS.month.scratchVolumeId]);
    expect(String(run.byName("worker-prepare-scratch").inputs.create)).toContain(`--volume-id '${STACK_OUTPUTS.month.scratchVolumeId}'`);
    expect(await promiseOf(run.outputs.scratchVolumeId)).toBe(STACK_OUTPUTS.month.scratchVolumeId);
  });

  it("without a configured identity, records the host key at first contact and pins it everywhere", async () => {
    expect(run.resources.some((r) => r.name === "worker-first-boot")).toBe(false);
    expect(run.byName("worker-instance").inputs.startupScriptId).toBeUndefined();
    const scan = run.byName("worker-host-key");
    expect(scan.type).toBe("command:local:Command");
    expect(scan.parentName).toBe("worker");
    expect(String(scan.inputs.create)).toContain("ssh-keyscan -T 5 -p 2201 -t ed25519 '127.0.0.1'");
    for (const c of run.resources.filter((r) => r.type.startsWith("command:remote:") && r.name.startsWith("worker-") && !r.name.includes("mello"))) {
      expect(unwrap(c.inputs.connection).hostKey, c.name).toBe(firstContactKey);
    }
    expect(await promiseOf(run.outputs.instanceHostKey)).toBe(firstContactKey);
  });

  it("connects to the override address and runs scripts with each host's own environment", () => {
    expect(unwrap(run.byName("worker-restore").inputs.connection)).toMatchObject({ host: "127.0.0.1", port: 2201 });
    expect(String(run.byName("worker-mount-sfs").inputs.create)).toContain("timeout -k 30 600 env COMFYUME_ROOT='/tmp/host-worker' bash '/opt/comfyume/host/mount-sfs.sh'");
    expect(String(run.byName("worker-backup-mello-before-delete").inputs.delete)).toContain("env COMFYUME_ROOT='/tmp/host-mello' bash '/home/dev/comfyume-scripts/host/backup-mello.sh'");
    expect(unwrap(run.byName("worker-backup-mello-before-delete").inputs.connection)).toMatchObject({ host: "comfy.example.net", port: 22 });
    expect(run.byName("worker-mello-scripts-host-backup-mello").inputs.remotePath).toBe("/home/dev/comfyume-scripts/host/backup-mello.sh");
  });

  it("tells restore-instance to keep the instance's own host keys in first-contact mode", () => {
    expect(String(run.byName("worker-restore").inputs.create)).toContain("--skip 'ssh-host-keys'");
  });

  it("still depends the backup hook on the instance and keeps secrets out of plaintext", () => {
    const hook = run.byName("worker-backup-before-delete");
    expect(([] as unknown[]).concat(hook.opts.dependsOn ?? [])).toContain(run.byName("worker-instance").resource);
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    for (const secret of Object.values(SECRETS)) expect(visible).not.toContain(secret);
  });
});
