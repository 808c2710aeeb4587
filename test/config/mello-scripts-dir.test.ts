// Each stack keeps its scripts on mello in its own directory. With one shared default (/opt/comfyume), the idle
// stack (watchdog) and every day stack wrote the same <dir>/lib files, so whichever ran last decided which library
// the nightly backup-mello.sh used.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../infra/config";
import { DAY_SECRET_KEYS, IDLE_SECRET_KEYS, dayValues, idleValues, raw } from "../support/fixtures";
import { runProgram } from "../support/mock-program";

/** Where the idle stack's watchdog keeps its scripts on mello (infra/phases/idle.ts). */
const IDLE_MELLO_DIR = "/opt/comfyume";

describe("per-stack scripts directory on mello", () => {
  it("defaults to a directory derived from the stack name, different for every stack and from idle's", () => {
    const dirs = ["workshop-day", "testing-day", "rehearsal-workshop-day"].map((stack) => {
      const env = stack.includes("testing") ? "testing" : "workshop";
      return loadConfig(raw(stack, dayValues(env), DAY_SECRET_KEYS)).paths.melloScriptsDir;
    });
    expect(dirs).toEqual(["/opt/comfyume/stacks/workshop-day", "/opt/comfyume/stacks/testing-day", "/opt/comfyume/stacks/rehearsal-workshop-day"]);
    expect(dirs).not.toContain(IDLE_MELLO_DIR);
    expect(loadConfig(raw("idle", idleValues(), IDLE_SECRET_KEYS)).paths.melloScriptsDir).toBe("/opt/comfyume/stacks/idle");
  });

  it("an explicit paths.melloScriptsDir still wins", () => {
    const cfg = loadConfig(raw("workshop-day", { ...dayValues(), "comfyume:paths": { melloScriptsDir: "/home/dev/scripts" } }, DAY_SECRET_KEYS));
    expect(cfg.paths.melloScriptsDir).toBe("/home/dev/scripts");
  });

  it("the day stack uploads backup-mello.sh and its library there, and its hook runs that copy", async () => {
    const run = await runProgram("workshop-day", dayValues(), DAY_SECRET_KEYS);
    const files = Object.keys(run.byName("worker-mello-scripts-files").inputs.files as object);
    expect(files).toEqual(expect.arrayContaining(["/opt/comfyume/stacks/workshop-day/host/backup-mello.sh", "/opt/comfyume/stacks/workshop-day/lib/common.sh"]));
    expect(files.filter((f) => !f.startsWith("/opt/comfyume/stacks/workshop-day/"))).toEqual([]);
    expect(String(run.byName("worker-backup-mello-before-delete").inputs.delete)).toContain("bash '/opt/comfyume/stacks/workshop-day/host/backup-mello.sh'");
  });
});
