// Every shell script of the project passes shellcheck (-x, following the shared library)
// and every host script answers --help.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOST, REPO, run } from "./helpers";

const scripts = [
  ...readdirSync(HOST).filter((f) => f.endsWith(".sh")).map((f) => join(HOST, f)),
  ...readdirSync(join(REPO, "scripts/lib")).filter((f) => f.endsWith(".sh")).map((f) => join(REPO, "scripts/lib", f)),
  ...readdirSync(join(REPO, "scripts/setup")).filter((f) => f.endsWith(".sh")).map((f) => join(REPO, "scripts/setup", f)),
];

describe("shellcheck", () => {
  it("finds the host scripts", () => {
    const names = readdirSync(HOST);
    for (const s of ["mount-sfs.sh", "prepare-scratch.sh", "restore-instance.sh", "seed-sfs.sh", "backup-instance.sh", "install-backup-cron.sh", "backup-to-r2.sh", "backup-mello.sh"]) {
      expect(names).toContain(s);
    }
  });

  it("reports no finding on any script", () => {
    const r = spawnSync("shellcheck", ["-x", "-P", "SCRIPTDIR", "--severity=style", ...scripts], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 180_000); // ~25 s on a quiet machine: every script follows the whole shared library (-x)

  it.each(readdirSync(HOST).filter((f) => f.endsWith(".sh")))("%s --help prints usage and exits 0", async (s) => {
    const r = await run(s, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
    expect(r.stdout).toMatch(/Exit codes/);
  });
});
