// The local cloud's shell pieces (the stand-in shims installed in every machine's /usr/local/sbin,
// the machines' init) pass shellcheck
// like every other script of the project.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const DIR = path.resolve(__dirname, "../../sim/local-cloud");

describe("local cloud shell scripts", () => {
  it("report no shellcheck finding", () => {
    const files = [...readdirSync(path.join(DIR, "shims")).map((f) => path.join(DIR, "shims", f)), path.join(DIR, "machine", "machine-init.sh")];
    expect(files.length).toBeGreaterThanOrEqual(7);
    const r = spawnSync("shellcheck", ["-x", "-P", "SCRIPTDIR", "--severity=style", "--shell=bash", ...files], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
