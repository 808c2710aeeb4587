// The workflows pass actionlint (installed by `npm run setup` via scripts/setup/build-actionlint.sh),
// including shellcheck of their run: scripts. Missing actionlint skips locally and fails in CI.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../support/pulumi-cli";

function pinnedVersion(): string {
  const script = fs.readFileSync(path.join(repoRoot, "scripts/setup/build-actionlint.sh"), "utf8");
  const match = /^ACTIONLINT_VERSION=(\S+)$/m.exec(script);
  if (!match) throw new Error("ACTIONLINT_VERSION not found in build-actionlint.sh");
  return match[1];
}

/** $ACTIONLINT, else the setup cache, else PATH. */
function findActionlint(): string | undefined {
  const cacheRoot = process.env.COMFYUME_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "comfyume-infra");
  const candidates = [process.env.ACTIONLINT, path.join(cacheRoot, `actionlint-v${pinnedVersion()}`, "actionlint")];
  for (const candidate of candidates) if (candidate && fs.existsSync(candidate)) return candidate;
  const onPath = spawnSync("sh", ["-c", "command -v actionlint"], { encoding: "utf8" });
  return onPath.status === 0 ? onPath.stdout.trim() : undefined;
}

const actionlint = findActionlint();
if (!actionlint && process.env.CI) {
  throw new Error("CI must lint the workflows: actionlint is missing (npm run setup runs scripts/setup/build-actionlint.sh)");
}

const workflowDir = path.join(repoRoot, ".github/workflows");
const workflows = fs.existsSync(workflowDir) ? fs.readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f)) : [];

describe.runIf(actionlint)("GitHub Actions workflows", () => {
  it("exist", () => {
    expect(workflows).toContain("preview.yml");
  });

  it.each(workflows)("%s passes actionlint", (file) => {
    const result = spawnSync(actionlint!, ["-no-color", "-oneline", path.join(".github/workflows", file)], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    expect(result.error).toBeUndefined();
    expect(`${result.stdout}${result.stderr}`.trim()).toBe("");
    expect(result.status).toBe(0);
  });

  it("catches a broken workflow (the linter really runs)", () => {
    const broken = "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n";
    const result = spawnSync(actionlint!, ["-no-color", "-oneline", "-"], { cwd: repoRoot, input: broken, encoding: "utf8", timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/property "nope" is not defined/);
  });
});
