// CI runs the whole rehearsal: `npm run rehearse` must pass and print its table and benchmark.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { pulumiToolchainReady } from "../support/pulumi-cli";

const repo = path.resolve(__dirname, "../..");
const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the rehearsal: the Pulumi toolchain is missing (npm run setup)");

describe.runIf(ready)("npm run rehearse", () => {
  it("runs the workshop cycle on the local cloud and verifies every phase", () => {
    const run = spawnSync("npm", ["run", "-s", "rehearse"], { cwd: repo, encoding: "utf8", timeout: 840_000 });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    for (const phase of ["idle up", "testing-month up (seeded)", "workshop-day up (restored)", "user activity", "workshop-day destroy", "workshop-day up again", "workshop-day destroy again", "testing-month destroy"]) {
      expect(output).toMatch(new RegExp(`✔ ${phase.replace(/[()]/g, "\\$&")}\\s`));
    }
    expect(output).toMatch(/files back byte for byte/);
    expect(output).toMatch(/day-up benchmark: .* = \d+\.\d\d \(target <= 1\.10\)/);
    expect(output).toMatch(/rehearsal passed/);
  }, 900_000);
});
