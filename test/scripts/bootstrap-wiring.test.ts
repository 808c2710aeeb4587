// The toolchain bootstrap is the first thing the program runs on every host it touches (the worker, the
// SFS loader, mello), before any other host script, under mocks (test/support/mock-program.ts): what
// each RemoteCommand runs and what it depends on. The bootstrap itself: test/scripts/bootstrap.test.ts.
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, MONTH_SECRET_KEYS, dayValues, monthValues } from "../support/fixtures";
import { REMOTE_COMMAND, runProgram, unwrapSecret as unwrap, type ProgramRun, type Recorded } from "../support/mock-program";

const dependsOn = (r: Recorded) => ([] as unknown[]).concat(r.opts.dependsOn ?? []);
const BOOTSTRAP = "bash '/opt/comfyume/host/bootstrap-host.sh'";
const MELLO_DIR = "/opt/comfyume/stacks/workshop-day";
const uploaded = (run: ProgramRun, name: string) => Object.keys(run.byName(name).inputs.files as object);

describe("the day: worker and mello", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram("workshop-day", dayValues("workshop"), DAY_SECRET_KEYS);
  });

  it("uploads the bootstrap and its pinned tool list with the host scripts, to the worker and to mello", () => {
    expect(uploaded(run, "worker-scripts-files")).toEqual(expect.arrayContaining(["/opt/comfyume/host/bootstrap-host.sh", "/opt/comfyume/host/toolchain.lock"]));
    // mello keeps each stack's scripts in their own directory.
    expect(uploaded(run, "worker-mello-scripts-files")).toEqual(expect.arrayContaining([`${MELLO_DIR}/host/bootstrap-host.sh`, `${MELLO_DIR}/host/toolchain.lock`]));
  });

  it("worker: scripts -> bootstrap --pre-mount, then mount-sfs (one command) -> bootstrap --cache on the SFS -> restore (prepare-scratch beside them)", () => {
    const [files, mount, toolchain, scratch, restore] = ["worker-scripts-files", "worker-mount-sfs", "worker-toolchain", "worker-prepare-scratch", "worker-restore"].map(run.byName);
    expect(mount.type).toBe(REMOTE_COMMAND);
    const lines = String(mount.inputs.create).split("\n");
    expect(lines[0]).toBe("set -e");
    expect(lines[1]).toBe(`timeout -k 30 900 ${BOOTSTRAP} --pre-mount </dev/null`);
    expect(lines[2]).toContain("bash '/opt/comfyume/host/mount-sfs.sh' --target ");
    expect(dependsOn(mount)).toContain(files.resource);
    expect(String(toolchain.inputs.create)).toBe(`timeout -k 30 900 ${BOOTSTRAP} --cache '/mnt/sfs/.comfyume/toolchain' </dev/null`);
    expect(dependsOn(toolchain)).toEqual([mount.resource]);
    // prepare-scratch runs no project tool (docs/toolchain.md): it waits for its script only; the restore for both.
    expect(dependsOn(scratch)).toEqual([files.resource]);
    expect(dependsOn(restore)).toEqual(expect.arrayContaining([scratch.resource, toolchain.resource]));
    // A replaced instance starts from the image again: both run again with it.
    expect(mount.inputs.triggers).toEqual(["inst-worker-instance"]);
    expect(toolchain.inputs.triggers).toEqual(["inst-worker-instance"]);
    expect(unwrap(toolchain.inputs.connection)).toMatchObject({ host: "203.0.113.10" });
  });

  it("mello: the bootstrap (no SFS there: from its apt sources) runs before the backup hook can", () => {
    const [files, toolchain, hook] = ["worker-mello-scripts-files", "worker-mello-toolchain", "worker-backup-mello-before-delete"].map(run.byName);
    // mello never mounts the SFS: no nfs-common there.
    expect(String(toolchain.inputs.create)).toBe(`timeout -k 30 900 bash '${MELLO_DIR}/host/bootstrap-host.sh' --no-sfs </dev/null`);
    expect(dependsOn(toolchain)).toEqual([files.resource]);
    expect(dependsOn(hook)).toContain(toolchain.resource);
    expect(unwrap(toolchain.inputs.connection)).toMatchObject({ host: "comfy.example.net" });
  });

  it("the first-boot script installs nfs-common itself, timed and logged, before it mounts the SFS", () => {
    const script = String(run.byName("worker-first-boot").inputs.script);
    expect(script).toContain("apt-get install -y -qq --no-install-recommends");
    expect(script).toContain('log "installed nfs-common (mount.nfs) in');
    expect(script.indexOf("nfs-common")).toBeLessThan(script.indexOf('"$mount_cmd" -t nfs'));
  });
});

describe("the month: the SFS loader fills the toolchain cache", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram("workshop-month", monthValues("workshop", true), MONTH_SECRET_KEYS);
  });

  it("bootstraps --pre-mount, mounts the SFS, bootstraps with --cache on it; the seed waits for it", () => {
    const toolchain = run.byName("shared-fs-loader-toolchain");
    const lines = String(toolchain.inputs.create).split("\n");
    expect(lines[0]).toBe("set -e");
    expect(lines[1]).toBe(`timeout -k 30 900 ${BOOTSTRAP} --pre-mount </dev/null`);
    expect(lines[2]).toContain("bash '/opt/comfyume/host/mount-sfs.sh' --target 'nfs.fin-01.datacrunch.io:/volume-88eb67d0' --mount-point '/mnt/sfs' --no-fstab");
    expect(lines[3]).toBe(`timeout -k 30 900 ${BOOTSTRAP} --cache '/mnt/sfs/.comfyume/toolchain' </dev/null`);
    expect(toolchain.inputs.timeoutSeconds).toBe(900 + 30 + 900 + 30 + 600 + 30 + 60);
    expect(dependsOn(toolchain)).toEqual([run.byName("shared-fs-loader-scripts-files").resource]);
    expect(dependsOn(run.byName("shared-fs-seed"))).toContain(toolchain.resource);
    expect(uploaded(run, "shared-fs-loader-scripts-files")).toEqual(expect.arrayContaining(["/opt/comfyume/host/bootstrap-host.sh", "/opt/comfyume/host/toolchain.lock"]));
  });
});
