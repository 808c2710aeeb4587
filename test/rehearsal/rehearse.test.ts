// CI runs the whole rehearsal: `npm run rehearse` must pass and print its table and benchmark, and
// write nothing on this (build) machine outside the simulated machines.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { pulumiToolchainReady } from "../support/pulumi-cli";
import { BUILD_MACHINE_DIRS, snapshot, snapshotDiff } from "./host-snapshot";

const repo = path.resolve(__dirname, "../..");
const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the rehearsal: the Pulumi toolchain is missing (npm run setup)");

describe.runIf(ready)("npm run rehearse", () => {
  it("runs the workshop cycle on the local cloud, verifies every phase and writes nothing outside the simulated machines", () => {
    const before = snapshot(BUILD_MACHINE_DIRS);
    const run = spawnSync("npm", ["run", "-s", "rehearse"], { cwd: repo, encoding: "utf8", timeout: 840_000 });
    const written = snapshotDiff(before, snapshot(BUILD_MACHINE_DIRS));
    const output = `${run.stdout}\n${run.stderr}`;
    // The run's own output (its table, its time) is kept for the report: vitest shows it only on failure.
    fs.mkdirSync(path.join(repo, ".comfyume"), { recursive: true });
    fs.writeFileSync(path.join(repo, ".comfyume/rehearse.test.out"), output);
    expect(run.status, output).toBe(0);
    for (const phase of ["idle up", "testing-month up (seeded)", "workshop-day up (restored)", "workshop-day up, nothing to change", "user activity", "workshop-day destroy", "workshop-day up again", "workshop-day destroy again", "testing-month destroy"]) {
      expect(output).toMatch(new RegExp(`✔ ${phase.replace(/[()]/g, "\\$&")}\\s`));
    }
    expect(output).toMatch(/files back byte for byte/);
    // Each nightly destroy's table: every set's newest manifest, read back from R2, with entries.
    for (const night of ["workshop-day destroy", "workshop-day destroy again"]) {
      const table = output.split(`R2 after ${night}:`)[1]?.split("\n\n")[0] ?? "";
      for (const set of ["models", "cache", "worker", "scratch/inputs", "scratch/outputs", "mello/user_data", "mello/outputs", "mello/inputs"]) {
        expect(table, `${night}: set ${set}`).toMatch(new RegExp(`^${set}\\s+comfyume-\\S+\\s+[1-9]\\d*\\s+[1-9]\\d*\\s+manifests/\\S+\\.tsv$`, "m"));
      }
    }
    expect(output).toMatch(/day-up benchmark: .* = \d+\.\d\d \(target <= 1\.10\)/);
    // The engine's floor (the second up changed nothing) and the first boot's installs, to a tenth of a second.
    expect(output).toMatch(/of which the engine's floor: \d+\.\d s, a second 'pulumi up' of the running day with nothing to change/);
    expect(output).toMatch(/the worker's first boot \(stock image\): apt-get update in \d+\.\ds; installed nfs-common in \d+\.\ds; installed rclone jq in \d+\.\ds/);
    expect(output).toMatch(/rehearsal passed/);
    expect(written, `the rehearsal wrote on this machine, outside the simulated machines (${BUILD_MACHINE_DIRS.join(", ")}):\n${written.join("\n")}`).toEqual([]);
  }, 900_000);
});
