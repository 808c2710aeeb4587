// common.sh's step timing: durations in tenths of a second from bash's own clock (EPOCHREALTIME), log stamps from
// printf's %(...)T in UTC, neither forking `date`; a bash without EPOCHREALTIME (older than 5) times with `date`.
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTmp, REPO, tmp } from "./helpers";

afterAll(cleanupTmp);

/** Runs SCRIPT with common.sh sourced and a `date` shim first on PATH that records each start, then runs the real one. */
function run(script: string): { stderr: string; dateStarts: number } {
  const dir = tmp("step-timing");
  const log = join(dir, "date.log");
  writeFileSync(log, "");
  writeFileSync(join(dir, "date"), `#!/bin/bash\necho "$*" >>${JSON.stringify(log)}\nexec /bin/date "$@"\n`);
  chmodSync(join(dir, "date"), 0o755);
  const r = spawnSync("bash", ["-c", `set -euo pipefail; source "$1"; ${script}`, "_", join(REPO, "scripts/lib/common.sh")], {
    encoding: "utf8",
    env: { PATH: `${dir}:${process.env.PATH}`, TZ: "Asia/Tokyo" },
  });
  expect(r.status, r.stderr).toBe(0);
  return { stderr: r.stderr, dateStarts: readFileSync(log, "utf8").split("\n").filter(Boolean).length };
}

/** The seconds of "step nap: done in N.Ns (ok)"; fails on any other format. */
function tookSeconds(stderr: string): number {
  const m = /step nap: done in (\d+\.\d)s \(ok\)/.exec(stderr);
  expect(m, stderr).not.toBeNull();
  return Number(m![1]);
}

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[/;

describe("step timing", () => {
  it("times a step to a tenth of a second, stamps lines in UTC, and forks no date", () => {
    const r = run("step nap sleep 0.3; step_summary");
    expect(tookSeconds(r.stderr)).toBeGreaterThanOrEqual(0.2); // at least the nap (each clock reading drops its hundredths)
    expect(r.stderr).toMatch(/^nap\s+\d+\.\d\s+ok$/m);
    const lines = r.stderr.split("\n").filter((l) => l.includes("step nap"));
    for (const line of lines) expect(line).toMatch(STAMP);
    // The stamp is UTC although TZ says Tokyo: within a minute of the UTC clock here.
    const stamp = Date.parse(lines[0].slice(0, 20));
    expect(Math.abs(stamp - Date.now())).toBeLessThan(60_000);
    expect(r.dateStarts).toBe(0);
  });

  it("a failed step is timed the same way in the summary", () => {
    const dir = tmp("step-timing-fail");
    const r = spawnSync("bash", ["-c", `source "$1"; step broken false`, "_", join(REPO, "scripts/lib/common.sh")], { encoding: "utf8", cwd: dir });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/step broken: FAILED after \d+\.\ds \(exit 1\)/);
    expect(r.stderr).toMatch(/^broken\s+\d+\.\d\s+FAILED$/m);
  });

  it("without EPOCHREALTIME (bash older than 5) the step is timed with date, in the same format", () => {
    const r = run("unset EPOCHREALTIME; step nap sleep 0.3");
    expect(tookSeconds(r.stderr)).toBeGreaterThanOrEqual(0.2);
    expect(r.dateStarts).toBe(2);
  });
});
