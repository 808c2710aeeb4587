// Phase `workshop-day`, identity pinned from config, day-scoped scratch: the worker, the restore
// chain and the backup-before-delete hooks.
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SCRIPTS_DIR } from "../../components/host-scripts";
import { DAY_SECRET_KEYS, SECRETS, WORKER_HOST_KEY, dayValues } from "../support/fixtures";
import { REMOTE_COMMAND, REMOTE_FILES, STACK_OUTPUTS, isSecretWrapped, isVerda, plaintextView, isSecretOutput, plaintextOutputs, promiseOf, runProgram, unwrapSecret as unwrap, type ProgramRun, type Recorded } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("workshop-day", dayValues("workshop"), DAY_SECRET_KEYS);
});

const remoteCommands = () => run.resources.filter((r) => r.type === REMOTE_COMMAND);
const dependsOn = (r: Recorded) => ([] as unknown[]).concat(r.opts.dependsOn ?? []);
const SFS_TARGET = String(STACK_OUTPUTS.month.sfsMountTarget);

describe("the worker and its volumes", () => {
  it("reads both layers below through StackReferences", () => {
    expect(run.byName("idle").inputs.name).toBe("organization/comfyume/idle");
    expect(run.byName("month").inputs.name).toBe("organization/comfyume/workshop-month");
  });

  it("creates a fresh scratch and attaches it with the month's SFS at instance creation", () => {
    expect(run.byName("worker").type).toBe("comfyume:verda:GpuWorker");
    const scratch = run.byName("worker-scratch");
    expect(isVerda(scratch, "Volume")).toBe(true);
    expect(scratch.inputs).toMatchObject({ type: "NVMe", size: 50, name: "comfyume-workshop-day-scratch", permanent: false });
    const instance = run.byName("worker-instance");
    expect(isVerda(instance, "Instance")).toBe(true);
    expect(instance.parentName).toBe("worker");
    expect(instance.inputs).toMatchObject({
      instanceType: "1A100.22V",
      image: "ubuntu-24.04-cuda-12.8-open-docker",
      hostname: "comfyume-workshop-day",
      locationCode: "FIN-01",
      isSpot: false,
      contract: "PAY_AS_YOU_GO",
      existingVolumes: ["sfs-0001", "vol-worker-scratch"],
      sshKeyIds: ["key-admin", "key-mello"],
      startupScriptId: "script-worker-first-boot",
    });
    // The scratch exists before the instance (creation order = registration order of dependencies).
    expect(run.resources.findIndex((r) => r.name === "worker-scratch")).toBeLessThan(run.resources.findIndex((r) => r.name === "worker-instance"));
    // The placement stays as deployed (a capacity fallback must not be undone by the next up).
    expect(instance.opts.ignoreChanges).toEqual(["startupScriptId", "instanceType", "locationCode", "isSpot", "contract"]);
    expect(scratch.opts.ignoreChanges).toEqual(["locationCode"]);
    expect(instance.opts.protect).toBeFalsy();
  });

  it("installs the pinned identity at first boot with a startup script that holds no secret", () => {
    const script = String(run.byName("worker-first-boot").inputs.script);
    expect(script).toContain(`target='${SFS_TARGET}'`);
    // The snapshot is resolved through the file `latest` (test/scripts/first-boot.test.ts runs it).
    expect(script).toContain("set_dir='/mnt/sfs/cache/backups/comfyume-workshop-day'");
    expect(script).toContain('"$set_dir/latest"');
    expect(script).not.toContain("latest/");
    expect(script).toMatch(/^[\x00-\x7f]*$/);
    for (const secret of Object.values(SECRETS)) expect(script).not.toContain(secret);
    expect(run.resources.some((r) => r.name === "worker-host-key")).toBe(false);
  });

  it("exports instance id, ip, price per hour, scratch id and the restore report", async () => {
    expect(await promiseOf(run.outputs.instanceId)).toBe("inst-worker-instance");
    expect(await promiseOf(run.outputs.instanceIp)).toBe("203.0.113.10");
    expect(await promiseOf(run.outputs.pricePerHour)).toBe(1.29);
    expect(await promiseOf(run.outputs.scratchVolumeId)).toBe("vol-worker-scratch");
    expect(await promiseOf(run.outputs.instanceHostKey)).toBe(WORKER_HOST_KEY);
    expect(await promiseOf(run.outputs.sfsMountTarget)).toBe(SFS_TARGET);
    expect(await promiseOf(run.outputs.restoreReport)).toBe("STEP  SECONDS  RESULT");
    expect(await isSecretOutput(run.outputs.restoreReport)).toBe(false);
  });
});

describe("restore", () => {
  it("runs mount-sfs and prepare-scratch (side by side: a day-scoped scratch needs no SFS), then restore-instance and the cron installer", () => {
    const chain = ["worker-mount-sfs", "worker-prepare-scratch", "worker-restore", "worker-backup-cron"].map(run.byName);
    expect(dependsOn(chain[1])).toEqual([run.byName("worker-scripts-files").resource]);
    expect(dependsOn(chain[2])).toContain(chain[1].resource);
    expect(dependsOn(chain[2])).toContain(run.byName("worker-toolchain").resource);
    expect(dependsOn(chain[3])).toContain(chain[2].resource);
    expect(dependsOn(chain[0])).toContain(run.byName("worker-scripts-files").resource);
  });

  it("uploads the instance's scripts and the shared library in one executable RemoteFiles", () => {
    const upload = run.byName("worker-scripts-files");
    expect(upload.type).toBe(REMOTE_FILES);
    expect(upload.parentName).toBe("worker-scripts");
    expect(upload.inputs.mode).toBe(0o755);
    const files = upload.inputs.files as Record<string, string>;
    for (const script of ["mount-sfs", "prepare-scratch", "restore-instance", "install-backup-cron", "backup-instance", "backup-to-r2"]) {
      expect(files[`/opt/comfyume/host/${script}.sh`], script).toMatch(/^#!/);
    }
    expect(files["/opt/comfyume/lib/common.sh"]).toBe(readFileSync(path.join(LOCAL_SCRIPTS_DIR, "lib/common.sh"), "utf8"));
    expect(unwrap(upload.inputs.connection)).toMatchObject({ host: "203.0.113.10", hostKey: WORKER_HOST_KEY });
    expect(run.resources.filter((r) => r.type === REMOTE_FILES).map((r) => r.name)).toEqual(["worker-scripts-files", "worker-mello-scripts-files"]);
  });

  it("mounts the SFS with the target from its API outputs, checking its identity marker against the month's SFS id", () => {
    // After the bootstrap of what mounting needs (nfs-common), in the same command.
    expect(String(run.byName("worker-mount-sfs").inputs.create).split("\n").slice(1)).toEqual([
      "timeout -k 30 900 bash '/opt/comfyume/host/bootstrap-host.sh' --pre-mount </dev/null",
      `timeout -k 30 600 bash '/opt/comfyume/host/mount-sfs.sh' --target '${SFS_TARGET}' --mount-point '/mnt/sfs' --sfs-id '${STACK_OUTPUTS.month.sfsId}' </dev/null`,
    ]);
  });

  it("prepares the scratch by volume id (the script formats blank devices only)", () => {
    expect(String(run.byName("worker-prepare-scratch").inputs.create)).toBe(
      "timeout -k 30 600 bash '/opt/comfyume/host/prepare-scratch.sh' --volume-id 'vol-worker-scratch' --mount-point '/mnt/scratch' </dev/null",
    );
  });

  it("restores with secrets on stdin only, logging off and secret outputs", () => {
    const restore = run.byName("worker-restore");
    const create = String(restore.inputs.create);
    // It logs to paths.restoreLog (emptied first: the last run only), where the report reads its table.
    expect(create.split("\n")).toEqual([
      "set -e",
      `mkdir -p "$(dirname '/var/log/comfyume/restore-instance.last.log')"`,
      ": >'/var/log/comfyume/restore-instance.last.log'",
      expect.stringMatching(/^timeout -k 30 3600 env RESTORE_LOG='\/var\/log\/comfyume\/restore-instance\.last\.log' bash '\/opt\/comfyume\/host\/restore-instance\.sh' --sfs '\/mnt\/sfs' --name 'comfyume-workshop-day' /),
    ]);
    expect(String(run.byName("worker-restore-report").inputs.create)).toBe("sed -n '/^STEP /,$p' '/var/log/comfyume/restore-instance.last.log'");
    expect(create).toContain("--expected-tailscale-ip '100.64.0.12' --redis-host '100.64.0.2'");
    expect(create).not.toContain("--skip 'ssh-host-keys'");
    const stdin = String((restore.inputs.stdin as { value: string }).value);
    expect(isSecretWrapped(restore.inputs.stdin)).toBe(true);
    expect(stdin).toContain(`TAILSCALE_AUTH_KEY=${SECRETS.tailscaleAuthKey}\n`);
    expect(stdin).toContain(`REDIS_PASSWORD=${SECRETS.redisPassword}\n`);
    expect(restore.inputs.environment).toBeUndefined();
    expect(restore.inputs.logging).toBe("none");
    expect(restore.opts.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
  });

  it("installs the hourly backup cron with the same backup set", () => {
    expect(String(run.byName("worker-backup-cron").inputs.create)).toBe(
      "timeout -k 30 600 bash '/opt/comfyume/host/install-backup-cron.sh' --schedule '17 * * * *' -- --name 'comfyume-workshop-day' --sfs '/mnt/sfs' </dev/null",
    );
  });
});

describe("backup before delete", () => {
  it("runs verified backup-to-r2 and the scratch backup on the instance in its delete step, with R2 keys on stdin", () => {
    const hook = run.byName("worker-backup-before-delete");
    const del = String(hook.inputs.delete);
    const [setE, readSecrets, sfsBackup, scratchBackup] = del.split("\n");
    expect([setE, readSecrets]).toEqual(["set -e", "secrets=$(cat)"]);
    expect(scratchBackup).toBe(
      `printf '%s\\n' "$secrets" | timeout -k 30 7200 bash '/opt/comfyume/host/backup-mello.sh' --r2-endpoint 'https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com' --data-dir '/mnt/scratch' --dirs 'inputs,outputs' --bucket 'comfyume-user-files-backups' --prefix 'scratch' --fresh-volume --state-dir '/mnt/scratch/.comfyume/backup-state' --shrink-tolerance '0.5'`,
    );
    expect(sfsBackup).toMatch(/^printf '%s\\n' "\$secrets" \| timeout -k 30 7200 bash '\/opt\/comfyume\/host\/backup-to-r2\.sh' --r2-endpoint 'https:\/\/0123456789abcdef0123456789abcdef\.eu\.r2\.cloudflarestorage\.com' --sfs '\/mnt\/sfs'/);
    expect(del).toContain("--worker-bucket 'comfyume-worker-container-backups'");
    expect(String((hook.inputs.stdin as { value: string }).value)).toBe(
      `R2_ACCESS_KEY_ID=${STACK_OUTPUTS.idle.r2AccessKeyId}\nR2_SECRET_ACCESS_KEY=${STACK_OUTPUTS.idle.r2SecretAccessKey}\n`,
    );
    expect(hook.inputs.logging).toBe("none");
  });

  it("depends on the instance and the scratch volume, so Pulumi deletes it (running the backup) first", () => {
    const hook = run.byName("worker-backup-before-delete");
    expect(dependsOn(hook)).toContain(run.byName("worker-instance").resource);
    expect(dependsOn(hook)).toContain(run.byName("worker-scratch").resource);
    expect(hook.opts.deletedWith).toBeUndefined();
    expect(hook.opts.retainOnDelete).toBeFalsy();
    expect(unwrap(hook.inputs.connection)).toMatchObject({ host: "203.0.113.10", hostKey: WORKER_HOST_KEY });
  });

  it("backs up the old instance before a replacement: hooks replace with it, deleting first", () => {
    const instance = run.byName("worker-instance");
    expect(instance.opts.deleteBeforeReplace).toBe(true);
    for (const name of ["worker-backup-before-delete", "worker-backup-mello-before-delete"]) {
      expect(run.byName(name).opts.replaceWith, name).toEqual([instance.resource]);
      expect(run.byName(name).opts.deleteBeforeReplace, name).toBe(true);
    }
    // A replaced instance starts empty: scripts are copied and the restore chain runs again.
    for (const name of ["worker-mount-sfs", "worker-prepare-scratch", "worker-restore", "worker-backup-cron", "worker-scripts-files"]) {
      expect(run.byName(name).inputs.triggers, name).toEqual(["inst-worker-instance"]);
    }
  });

  it("guards the backup: an InstanceGuard depending on the instance's hook is deleted (checks the instance) first", () => {
    const guard = run.byName("worker-instance-guard");
    expect(guard.type).toBe("pulumi-nodejs:dynamic/verda:InstanceGuard");
    expect(guard.inputs).toMatchObject({ instanceId: "inst-worker-instance", scratchVolumeId: "vol-worker-scratch", stack: "workshop-day", providerVersion: expect.any(String) });
    expect(dependsOn(guard)).toContain(run.byName("worker-backup-before-delete").resource);
    expect(guard.opts.replaceWith).toEqual([run.byName("worker-instance").resource]);
    expect(guard.opts.deleteBeforeReplace).toBe(true);
    expect(guard.opts.retainOnDelete).toBeFalsy();
  });

  it("runs verified backup-mello on mello in the same way, before the instance goes", () => {
    const hook = run.byName("worker-backup-mello-before-delete");
    expect(String(hook.inputs.delete)).toBe(
      "timeout -k 30 7200 bash '/opt/comfyume/stacks/workshop-day/host/backup-mello.sh' --r2-endpoint 'https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com' --bucket 'comfyume-user-files-backups' --shrink-tolerance '0.5'",
    );
    expect(dependsOn(hook)).toContain(run.byName("worker-instance").resource);
    expect(dependsOn(run.byName("worker-backup-before-delete"))).toContain(hook.resource);
    expect(unwrap(hook.inputs.connection)).toMatchObject({ host: "comfy.example.net", hostKey: STACK_OUTPUTS.idle.melloHostKey });
    expect(hook.opts.deletedWith).toBeUndefined();
  });
});

describe("every remote command", () => {
  it("pins the host key, keeps the private key secret and wraps each script in timeout", () => {
    const commands = remoteCommands();
    // 7 + the toolchain bootstrap: worker-toolchain, worker-mello-toolchain (--pre-mount runs inside worker-mount-sfs).
    expect(commands.length).toBe(9);
    for (const c of commands) {
      // The resource's own deadline comes after every script's `timeout -k 30 <secs>` could fire.
      const scriptSeconds = [c.inputs.create, c.inputs.delete].flatMap((s) => [...String(s ?? "").matchAll(/timeout -k 30 (\d+) /g)].map((m) => Number(m[1])));
      expect(Number.isInteger(c.inputs.timeoutSeconds), c.name).toBe(true);
      for (const seconds of scriptSeconds) expect(c.inputs.timeoutSeconds as number, c.name).toBeGreaterThan(seconds + 30);
      expect(isSecretWrapped(c.inputs.connection), c.name).toBe(true);
      const conn = unwrap(c.inputs.connection);
      expect(conn.hostKey, c.name).toMatch(/^ssh-ed25519 /);
      expect(conn.privateKey, c.name).toBe(SECRETS.sshPrivateKey);
      for (const script of [c.inputs.create, c.inputs.delete].filter((s) => typeof s === "string" && s.includes("/host/"))) {
        for (const call of String(script).match(/bash '[^']+\/host\/[^']+'/g) ?? []) {
          expect(String(script), `${c.name}: ${call}`).toMatch(new RegExp(`timeout -k 30 \\d+ (env \\S+ )*${call.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
        }
      }
    }
  });

  it("runs through the project's SSH resources only: no @pulumi/command plugin is needed", () => {
    expect(run.resources.filter((r) => r.type.startsWith("command:"))).toEqual([]);
  });

  it("keeps every secret out of plaintext inputs (command lines, startup script, copies)", () => {
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    for (const secret of [...Object.values(SECRETS), String(STACK_OUTPUTS.idle.r2AccessKeyId), String(STACK_OUTPUTS.idle.r2SecretAccessKey)]) {
      expect(visible).not.toContain(secret);
    }
  });

  it("shows no secret value in any non-secret stack output", async () => {
    const shown = await plaintextOutputs(run.outputs);
    for (const secret of [...Object.values(SECRETS), String(STACK_OUTPUTS.idle.r2AccessKeyId), String(STACK_OUTPUTS.idle.r2SecretAccessKey)]) expect(shown).not.toContain(secret);
  });
});
