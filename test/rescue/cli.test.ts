// `npm run rescue` refuses bad input with a message naming the setting and the fix, before it
// reads any state or calls Verda.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { pulumiToolchainReady, repoRoot } from "../support/pulumi-cli";

function rescue(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(path.join(repoRoot, "scripts/node-env"), ["tsx", "scripts/rescue.ts", ...args], {
    cwd: repoRoot, encoding: "utf8", timeout: 60_000, env: { ...process.env, VERDA_CLIENT_ID: "", VERDA_CLIENT_SECRET: "", ...env },
  });
  return { status: r.status, stderr: r.stderr };
}

describe.runIf(pulumiToolchainReady())("npm run rescue: bad input", () => {
  it("names the missing or wrong setting and exits 1", () => {
    const cases: [string[], RegExp][] = [
      [[], /--stack is required/],
      [["--stack", "workshop-day", "--instance-type", "1H100.80S.22V"], /--instance-type 1H100\.80S\.22V: use a CPU type such as CPU\.4V\.16G/],
      [["--stack", "workshop-day", "--json"], /--json needs --yes/],
      [["--stack", "workshop-day", "--bogus"], /unknown argument --bogus/],
      [["--stack", "workshop-day", "--yes"], /VERDA_CLIENT_ID and VERDA_CLIENT_SECRET must be set/],
    ];
    for (const [args, message] of cases) {
      const r = rescue(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it("reports a stack that does not exist without touching anything", () => {
    const state = mkdtempSync(path.join(tmpdir(), "comfyume-rescue-cli-"));
    try {
      const r = rescue(["--stack", "no-such-day", "--yes"], {
        VERDA_CLIENT_ID: "id", VERDA_CLIENT_SECRET: "secret", VERDA_BASE_URL: "http://127.0.0.1:9/v1",
        PULUMI_BACKEND_URL: `file://${state}`, PULUMI_CONFIG_PASSPHRASE: "x",
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/rescue: scripts\/pulumi stack export --stack no-such-day failed/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
