// Phase `testing-day`: cheap CPU default, first-contact host key, scratch kept for the month.
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, FIRST_CONTACT_HOST_KEY, SECRETS, dayValues } from "../support/fixtures";
import { REMOTE_COMMAND, REMOTE_FILES, STACK_OUTPUTS, isSecretWrapped, isVerda, plaintextView, promiseOf, runProgram, unwrapSecret as unwrap, type ProgramRun } from "../support/mock-program";

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

const firstContactKey = FIRST_CONTACT_HOST_KEY; // what the fresh (mocked) host presented

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
    // It holds the users' files of earlier days: prepare-scratch formats it on its first day only, recorded on the SFS.
    expect(String(run.byName("worker-prepare-scratch").inputs.create)).toMatch(
      new RegExp(` --formatted-marker '/mnt/sfs/\\.comfyume/scratch-formatted/${STACK_OUTPUTS.month.scratchVolumeId}' </dev/null$`),
    );
    expect(await promiseOf(run.outputs.scratchVolumeId)).toBe(STACK_OUTPUTS.month.scratchVolumeId);
    // Its nightly backup needs the mounted volume and keeps the size check against the last backup.
    const scratchBackup = String(run.byName("worker-backup-before-delete").inputs.delete).split("\n").pop();
    expect(scratchBackup).toMatch(/--prefix 'scratch' --require-mount/);
    expect(scratchBackup).not.toContain("--fresh-volume");
  });

  it("without a configured identity, records the host key at first contact and pins it everywhere", async () => {
    // No identity to install at first boot: the first-boot script only starts the toolchain's install.
    const firstBoot = String(run.byName("worker-first-boot").inputs.script);
    expect(firstBoot).toContain("installing in the background");
    expect(firstBoot).not.toContain("ssh_host");
    expect(run.byName("worker-instance").inputs.startupScriptId).toBe("script-worker-first-boot");
    const firstContact = run.byName("worker-host-key");
    expect(firstContact.type).toBe(REMOTE_COMMAND);
    expect(firstContact.parentName).toBe("worker");
    expect(firstContact.inputs.create).toBe("true");
    // The one connection without a pinned key; it waits out the boot (600 s / 8 s backoff = 75 dials).
    expect(isSecretWrapped(firstContact.inputs.connection)).toBe(true);
    const connection = unwrap(firstContact.inputs.connection);
    expect(connection).toMatchObject({ host: "127.0.0.1", port: 2201, user: "root", privateKey: SECRETS.sshPrivateKey, dialErrorLimit: 75 });
    expect(connection.hostKey).toBeUndefined();
    expect(firstContact.opts.dependsOn).toContain(run.byName("worker-instance").resource);
    expect(firstContact.inputs.triggers).toEqual(["inst-worker-instance"]);
    const pinned = run.resources.filter(
      (r) => (r.type === REMOTE_COMMAND || r.type === REMOTE_FILES) && r.name.startsWith("worker-") && !r.name.includes("mello") && r !== firstContact,
    );
    // 7 + the toolchain bootstrap (worker-toolchain; --pre-mount runs inside worker-mount-sfs).
    expect(pinned.length).toBe(8);
    for (const c of pinned) expect(unwrap(c.inputs.connection).hostKey, c.name).toBe(firstContactKey);
    expect(await promiseOf(run.outputs.instanceHostKey)).toBe(firstContactKey);
  });

  it("connects to the override address and runs scripts with each host's own environment", () => {
    expect(unwrap(run.byName("worker-restore").inputs.connection)).toMatchObject({ host: "127.0.0.1", port: 2201 });
    expect(String(run.byName("worker-mount-sfs").inputs.create)).toContain("timeout -k 30 600 env COMFYUME_ROOT='/tmp/host-worker' bash '/opt/comfyume/host/mount-sfs.sh'");
    expect(String(run.byName("worker-backup-mello-before-delete").inputs.delete)).toContain("env COMFYUME_ROOT='/tmp/host-mello' bash '/home/dev/comfyume-scripts/host/backup-mello.sh'");
    expect(unwrap(run.byName("worker-backup-mello-before-delete").inputs.connection)).toMatchObject({ host: "comfy.example.net", port: 22 });
    const melloFiles = run.byName("worker-mello-scripts-files");
    expect(Object.keys(melloFiles.inputs.files as object)).toContain("/home/dev/comfyume-scripts/host/backup-mello.sh");
    expect(unwrap(melloFiles.inputs.connection)).toMatchObject({ host: "comfy.example.net", hostKey: STACK_OUTPUTS.idle.melloHostKey });
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
