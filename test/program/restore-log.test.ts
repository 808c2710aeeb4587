// paths.restoreLog is the log restore-instance writes (RESTORE_LOG) and the file the restore report
// reads back. The generated commands run here with real bash and the real restore-instance.sh
// (scripts dir = this repository), on a sandbox root where the restore stops at its snapshot step.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { runProgram, type ProgramRun } from "../support/mock-program";

const REPO = path.resolve(__dirname, "../..");
const box = mkdtempSync(path.join(tmpdir(), "comfyume-restore-log-"));
const root = path.join(box, "root");
const sfs = path.join(box, "sfs");
const restoreLog = path.join(box, "logs/restore.log");
const SET = "comfyume-testing-day";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram(
    "testing-day",
    {
      ...dayValues("testing"),
      "comfyume:paths": { scriptsDir: path.join(REPO, "scripts"), sfsMount: sfs, restoreLog },
      // A RESTORE_LOG here must not split the log from the report: the setting wins.
      "comfyume:hostEnv": { COMFYUME_ROOT: root, RESTORE_LOG: path.join(box, "ignored.log"), SYSTEMCTL_CMD: "true", TAILSCALE_CMD: "true", DOCKER_CMD: "true" },
    },
    DAY_SECRET_KEYS,
  );
});
afterAll(() => rmSync(box, { recursive: true, force: true }));

const bash = (command: string, input = "") => spawnSync("bash", ["-c", command], { input, encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: box, LANG: "C.UTF-8" } });

describe("the restore log", () => {
  it("hands the configured path to restore-instance and reads the report from it", () => {
    const create = String(run.byName("worker-restore").inputs.create);
    expect(create).toMatch(new RegExp(`^timeout -k 30 3600 env .*RESTORE_LOG='${restoreLog}' .*bash '${REPO}/scripts/host/restore-instance.sh'`, "m"));
    expect(create).not.toContain("ignored.log");
    expect(String(run.byName("worker-restore-report").inputs.create)).toBe(`sed -n '/^STEP /,$p' '${restoreLog}'`);
  });

  it("holds the last run only, with its step table, and the report shows that table; the exit code is kept", () => {
    // `latest` names a snapshot that is not there: restore-instance fails in its snapshot step
    // (before any R2 fallback), after logging.
    mkdirSync(path.join(sfs, "cache/backups", SET), { recursive: true });
    writeFileSync(path.join(sfs, "cache/backups", SET, "latest"), "2026-01-01T000000Z\n");
    mkdirSync(path.dirname(restoreLog), { recursive: true });
    writeFileSync(restoreLog, "STEP from an earlier run\nstale line\n");

    const restore = bash(String(run.byName("worker-restore").inputs.create), "TAILSCALE_AUTH_KEY=x\nREDIS_PASSWORD=y\n");
    expect(restore.status).toBe(1);
    expect(restore.stderr).toMatch(/has no MANIFEST\.sha256/);
    const log = readFileSync(restoreLog, "utf8");
    expect(log).not.toContain("stale line");
    expect(log).toMatch(/\[restore-instance\.sh\] step validate: start/);
    expect(log).toMatch(/^snapshot\s+[\d.]+\s+FAILED$/m);
    // Nothing at the script's built-in default or at the overridden hostEnv path.
    expect(existsSync(path.join(root, "var/log/comfyume/restore-instance.log"))).toBe(false);
    expect(existsSync(path.join(box, "ignored.log"))).toBe(false);

    const report = bash(String(run.byName("worker-restore-report").inputs.create));
    expect(report.status).toBe(0);
    expect(report.stdout.split("\n").filter(Boolean)).toEqual([
      expect.stringMatching(/^STEP\s+SECONDS\s+RESULT$/),
      expect.stringMatching(/^validate\s+[\d.]+\s+ok$/),
      expect.stringMatching(/^snapshot\s+[\d.]+\s+FAILED$/),
    ]);
  });
});
