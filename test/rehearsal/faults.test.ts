// CI runs the fault rehearsal: `npm run rehearse -- --faults` injects one fault at a time into the
// nightly destroy and the next morning's up, and its table must show every safety invariant held:
// no user file lost, no instance deleted without a verified backup, every failure naming its cause,
// and a converged retry once the fault is cleared.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { FAULTS } from "../../sim/rehearsal/faults/catalogue";
import { pulumiToolchainReady } from "../support/pulumi-cli";

const repo = path.resolve(__dirname, "../..");
const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the fault rehearsal: the Pulumi toolchain is missing (npm run setup)");

const REQUIRED = [
  "Verda 500 on delete",
  "Verda 503 on delete",
  "Verda 429 on delete",
  "Verda 207 partial delete",
  "volume stuck detaching",
  "instance host unreachable",
  "SSH dropped mid-backup",
  "R2 down mid-upload",
  "object corrupted in R2 before verify",
  "SFS full",
  "hourly job during the nightly backup",
  "empty set (scratch mount gone)",
  "instance deleted out of band",
  "scratch probe fails (month scratch)",
  "SFS pseudo path changed overnight",
];

describe("the fault catalogue", () => {
  it("covers every fault the issue names", () => {
    expect(FAULTS.map((f) => f.name).sort()).toEqual([...REQUIRED].sort());
  });
});

describe.runIf(ready)("npm run rehearse -- --faults", () => {
  it("keeps every user file and every instance safe under each fault", () => {
    const run = spawnSync("npm", ["run", "-s", "rehearse", "--", "--faults"], { cwd: repo, encoding: "utf8", timeout: 1_740_000 });
    const output = `${run.stdout}\n${run.stderr}`;
    const table = output.slice(output.indexOf("FAULT TABLE"));
    expect(output, output).toContain("FAULT TABLE");
    // One row per fault, each judged; a FAIL row names the broken invariant below the table.
    for (const name of REQUIRED) expect(table, `row for ${name}`).toMatch(new RegExp(`^(ok|FAIL)\\s*\\| ${name.replace(/[()]/g, "\\$&")}\\s*\\|`, "m"));
    const failures = table.split("\n").filter((l) => /^\s+FAIL /.test(l));
    expect(failures, table).toEqual([]);
    expect(table).not.toMatch(/^FAIL\s*\|/m);
    expect(output).toMatch(/fault rehearsal passed: (\d+) of \1 fault\(s\) ok; took \d+ s/);
    expect(run.status, output).toBe(0);
  }, 1_800_000);
});
