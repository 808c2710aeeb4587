// Day-up order (issue 13): every step of the day's chain waits only for what it needs, so nothing that could run
// beside the chain waits behind it. The whole dependsOn map of the day's remote steps, exactly: an edge added
// later has to be argued for here.
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("workshop-day", dayValues("workshop"), DAY_SECRET_KEYS);
});

/** The names of what a resource's dependsOn lists, sorted. */
function waitsFor(name: string): string[] {
  const listed = ([] as unknown[]).concat(run.byName(name).opts.dependsOn ?? []);
  return listed.map((resource) => run.resources.find((r) => r.resource === resource)?.name ?? "?").sort();
}

describe("the day's steps wait only for what they need", () => {
  it("the worker's chain: upload, then bootstrap --pre-mount with the mount, toolchain beside prepare-scratch, restore, then report and cron side by side", () => {
    // On the HostScripts component (its upload inherits it): the upload needs the instance and its scratch, not the
    // SFS share; the mount does (Verda's share settings).
    expect(waitsFor("worker-scripts")).toEqual(["worker-instance", "worker-scratch"]);
    expect(waitsFor("worker-sfs-share")).toEqual(["worker-instance"]);
    // The mount (its command runs bootstrap --pre-mount first) needs the scripts and the share.
    expect(waitsFor("worker-mount-sfs")).toEqual(["worker-scripts-files", "worker-sfs-share"]);
    expect(waitsFor("worker-toolchain")).toEqual(["worker-mount-sfs"]);
    // A day-scoped scratch needs neither the SFS nor the toolchain (only the image's util-linux and e2fsprogs).
    expect(waitsFor("worker-prepare-scratch")).toEqual(["worker-scripts-files"]);
    expect(waitsFor("worker-restore")).toEqual(["worker-prepare-scratch", "worker-toolchain"]);
    expect(waitsFor("worker-restore-report")).toEqual(["worker-restore"]);
    expect(waitsFor("worker-backup-cron")).toEqual(["worker-restore"]);
  });

  it("a month-scoped scratch is prepared after the SFS mount: its formatted-marker lives on the SFS", async () => {
    const month = await runProgram("workshop-day", { ...dayValues("workshop"), "comfyume:scratch": { lifetime: "month" } }, DAY_SECRET_KEYS);
    const listed = ([] as unknown[]).concat(month.byName("worker-prepare-scratch").opts.dependsOn ?? []);
    expect(listed.map((resource) => month.resources.find((r) => r.resource === resource)?.name).sort()).toEqual(["worker-mount-sfs"]);
    expect(String(month.byName("worker-prepare-scratch").inputs.create)).toContain("--formatted-marker");
  });

  it("mello's branch starts at once and waits for the instance only where the nightly order needs it", () => {
    expect(waitsFor("worker-mello-scripts-files")).toEqual([]);
    expect(waitsFor("worker-mello-toolchain")).toEqual(["worker-mello-scripts-files"]);
    expect(waitsFor("worker-backup-mello-before-delete")).toEqual(["worker-instance", "worker-mello-scripts-files", "worker-mello-toolchain", "worker-scratch"]);
  });

  it("the instance's backup hook needs its scripts and toolchain, not the restore: its pre-flight runs beside the restore", () => {
    expect(waitsFor("worker-backup-before-delete")).toEqual([
      "worker-backup-mello-before-delete", "worker-instance", "worker-scratch", "worker-scripts-files", "worker-toolchain",
    ]);
    expect(waitsFor("worker-instance-guard")).toEqual(["worker-backup-before-delete"]);
  });
});
