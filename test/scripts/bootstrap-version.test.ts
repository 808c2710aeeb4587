// bootstrap-host.sh's version comparison (tc_version_ge), which decides whether an installed tool meets its pin in
// toolchain.lock: done in bash alone since it runs for every tool in every check, so it is held here to the
// ordering of `sort -V` (what it replaced) on the version shapes the pinned tools print. Where two versions are
// numerically equal (1.60 and 1.60.0, 08.1 and 8.1) the pin is met, while sort -V orders them by their text.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const SCRIPT = path.resolve(__dirname, "../../scripts/host/bootstrap-host.sh");
const fn = /^tc_version_ge\(\) \{\n[\s\S]*?\n\}\n/m.exec(readFileSync(SCRIPT, "utf8"))?.[0] ?? "";

/** [have, min, have >= min] */
const CASES: [string, string, boolean][] = [
  ["1.60.1", "1.60", true],
  ["1.60", "1.60.1", false],
  ["1.59.9", "1.60", false],
  ["2.0", "1.60", true],
  ["1.6", "1.6", true],
  ["1.60", "1.60.0", true], // numerically equal
  ["7.88.1", "7.76", true],
  ["7.76", "7.88.1", false],
  ["9.1", "8.30", true],
  ["8.30", "9.1", false],
  ["1.10", "1.9", true],
  ["1.9", "1.10", false],
  ["1.60.1", "1.60.10", false],
  ["08.1", "8.1", true],
  ["1.46", "1.47", false],
];

/** Numerically equal pairs: the pin is met; sort -V would order them by text. */
const EQUAL = new Set(["1.60 1.60.0", "08.1 8.1"]);

describe("tc_version_ge", () => {
  it("is found in bootstrap-host.sh", () => expect(fn).toContain("tc_version_ge()"));

  it.each(CASES)("%s >= %s is %s, as sort -V orders them", (have, min, expected) => {
    const r = spawnSync("bash", ["-c", `set -euo pipefail\n${fn}\nif tc_version_ge "$1" "$2"; then echo ge; else echo lt; fi`, "bash", have, min], { encoding: "utf8", timeout: 10_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(expected ? "ge" : "lt");
    if (EQUAL.has(`${have} ${min}`)) return;
    const sorted = spawnSync("sort", ["-V"], { input: `${min}\n${have}\n`, encoding: "utf8" }).stdout.split("\n")[0];
    expect(sorted === min || have === min).toBe(expected);
  });
});
