// Phase `workshop-month` with seeding on: the SFS, the temporary loader and the seed command.
import { beforeAll, describe, expect, it } from "vitest";
import { FIRST_CONTACT_HOST_KEY, MONTH_SECRET_KEYS, SECRETS, monthValues } from "../support/fixtures";
import { REMOTE_COMMAND, REMOTE_FILES, STACK_OUTPUTS, isSecretWrapped, isVerda, plaintextView, promiseOf, runProgram, unwrapSecret as unwrap, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("workshop-month", monthValues("workshop", true), MONTH_SECRET_KEYS);
});


describe("the SFS", () => {
  it("reads the idle layer through a StackReference", () => {
    expect(run.byName("idle").inputs.name).toBe("organization/comfyume/idle");
  });

  it("is an NVMe_Shared volume under the SharedFilesystem component, protected by config", () => {
    expect(run.byName("shared-fs").type).toBe("comfyume:verda:SharedFilesystem");
    const sfs = run.byName("shared-fs-sfs");
    expect(isVerda(sfs, "Volume")).toBe(true);
    expect(sfs.parentName).toBe("shared-fs");
    expect(sfs.opts.protect).toBe(true);
    expect(sfs.inputs).toMatchObject({ type: "NVMe_Shared", name: "comfyume-workshop-sfs", size: 220, locationCode: "FIN-01" });
  });

  it("creates no month scratch when scratch lives for the day", () => {
    expect(run.resources.some((r) => r.name === "shared-fs-scratch")).toBe(false);
  });

  it("exports id, mount command, pseudo path, derived mount target, size and location", async () => {
    expect(await promiseOf(run.outputs.sfsId)).toBe("vol-shared-fs-sfs");
    expect(await promiseOf(run.outputs.sfsMountCommand)).toContain("nfs.fin-01.datacrunch.io:volume-88eb67d0");
    expect(await promiseOf(run.outputs.sfsPseudoPath)).toBe("volume-88eb67d0");
    expect(await promiseOf(run.outputs.sfsMountTarget)).toBe("nfs.fin-01.datacrunch.io:/volume-88eb67d0");
    expect(await promiseOf(run.outputs.sfsSizeGb)).toBe(220);
    expect(await promiseOf(run.outputs.sfsLocation)).toBe("FIN-01");
    expect(await promiseOf(run.outputs.loaderRunning)).toBe(true);
  });
});

describe("seeding with the loader", () => {
  it("creates a cheap CPU loader with the SFS attached at creation and the Verda SSH keys", () => {
    const loader = run.byName("shared-fs-loader");
    expect(isVerda(loader, "Instance")).toBe(true);
    expect(loader.parentName).toBe("shared-fs");
    expect(loader.inputs).toMatchObject({
      instanceType: "CPU.4V.16G",
      hostname: "comfyume-workshop-loader",
      existingVolumes: ["vol-shared-fs-sfs"],
      sshKeyIds: STACK_OUTPUTS.idle.verdaSshKeyIds,
      isSpot: false,
    });
  });

  it("pins the loader's host key from first contact", () => {
    const firstContact = run.byName("shared-fs-loader-host-key");
    expect(firstContact.type).toBe(REMOTE_COMMAND);
    expect(firstContact.inputs.create).toBe("true");
    expect(unwrap(firstContact.inputs.connection)).toMatchObject({ host: "203.0.113.10", port: 22 });
    expect(unwrap(firstContact.inputs.connection).hostKey).toBeUndefined();
    expect(firstContact.opts.dependsOn).toContain(run.byName("shared-fs-loader").resource);
    expect(firstContact.inputs.triggers).toEqual(["inst-shared-fs-loader"]);
    for (const name of ["shared-fs-seed", "shared-fs-loader-scripts-files"]) {
      expect(unwrap(run.byName(name).inputs.connection).hostKey, name).toBe(FIRST_CONTACT_HOST_KEY);
    }
  });

  it("copies the scripts and the shared library to the loader", () => {
    const uploads = run.resources.filter((r) => r.type === REMOTE_FILES);
    expect(uploads.map((u) => u.name)).toEqual(["shared-fs-loader-scripts-files"]);
    const paths = Object.keys(uploads[0].inputs.files as object);
    expect(paths).toEqual(expect.arrayContaining(["/opt/comfyume/host/mount-sfs.sh", "/opt/comfyume/host/seed-sfs.sh", "/opt/comfyume/lib/common.sh"]));
    expect(paths.filter((p) => p.includes("/host/")).sort()).toEqual([
      "/opt/comfyume/host/bootstrap-host.sh",
      "/opt/comfyume/host/mount-sfs.sh",
      "/opt/comfyume/host/seed-sfs.sh",
      "/opt/comfyume/host/toolchain.lock",
    ]);
    expect(uploads[0].inputs.mode).toBe(0o755);
    expect(run.byName("shared-fs-seed").opts.dependsOn).toContain(uploads[0].resource);
  });

  it("mounts the SFS from its API target, then seeds from R2 with secrets on stdin, each under a timeout", () => {
    const seed = run.byName("shared-fs-seed");
    const create = String(seed.inputs.create);
    expect(create).toContain("timeout -k 30 600 bash '/opt/comfyume/host/mount-sfs.sh' --target 'nfs.fin-01.datacrunch.io:/volume-88eb67d0' --mount-point '/mnt/sfs'");
    // The loader got the SFS by id: it writes the identity marker every later mount checks.
    expect(create).toContain("--no-fstab --sfs-id 'vol-shared-fs-sfs' --write-marker");
    expect(create).toContain(`timeout -k 30 21600 bash '/opt/comfyume/host/seed-sfs.sh' --r2-endpoint '${STACK_OUTPUTS.idle.r2Endpoint}'`);
    expect(create).toContain("--models-bucket 'comfyume-model-vault-backups'");
    expect(create.indexOf("mount-sfs.sh")).toBeLessThan(create.indexOf("seed-sfs.sh"));
    expect(isSecretWrapped(seed.inputs.stdin)).toBe(true);
    expect(String((seed.inputs.stdin as { value: string }).value)).toContain(`R2_ACCESS_KEY_ID=${STACK_OUTPUTS.idle.r2AccessKeyId}\n`);
    expect(seed.inputs.logging).toBe("none");
    expect(seed.opts.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    // The resource deadline covers both scripts' own timeouts and their kill grace.
    expect(seed.inputs.timeoutSeconds).toBe(600 + 30 + 21600 + 30 + 60);
    expect(isSecretWrapped(seed.inputs.connection)).toBe(true);
    expect(unwrap(seed.inputs.connection)).toMatchObject({ host: "203.0.113.10", user: "root", dialErrorLimit: 40 });
  });

  it("keeps secrets out of every plaintext input", () => {
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    for (const secret of [...Object.values(SECRETS), String(STACK_OUTPUTS.idle.r2AccessKeyId), String(STACK_OUTPUTS.idle.r2SecretAccessKey)]) {
      expect(visible).not.toContain(secret);
    }
  });
});
