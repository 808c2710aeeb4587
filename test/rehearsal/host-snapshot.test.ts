// The check behind "nothing written outside the simulated machines" must be able to fail: it
// names every path created, changed or removed under the watched roots, and nothing else.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { snapshot, snapshotDiff } from "./host-snapshot";

describe("build machine snapshot", () => {
  let dir = "";
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names every path created, changed or removed, and is silent when nothing changed", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-snapshot-"));
    const home = path.join(dir, "home");
    const etc = path.join(dir, "etc");
    fs.mkdirSync(path.join(home, "dev"), { recursive: true });
    fs.mkdirSync(etc);
    fs.writeFileSync(path.join(etc, "hosts"), "127.0.0.1 localhost\n");
    fs.writeFileSync(path.join(etc, "gone"), "x");
    fs.symlinkSync("/proc/self/mounts", path.join(etc, "mtab"));
    const old = new Date("2020-01-01T00:00:00Z");
    for (const p of [path.join(home, "dev"), home, etc, path.join(etc, "hosts")]) fs.utimesSync(p, old, old);
    const roots = [home, etc, path.join(dir, "mnt")];

    const before = snapshot(roots);
    expect(snapshotDiff(before, snapshot(roots))).toEqual([]);

    fs.mkdirSync(path.join(home, "dev/comfyume/data/outputs/user001"), { recursive: true });
    fs.writeFileSync(path.join(home, "dev/comfyume/data/outputs/user001/final_cut.mp4"), "bytes");
    fs.appendFileSync(path.join(etc, "hosts"), "10.0.0.1 mello\n");
    fs.rmSync(path.join(etc, "gone"));
    const diff = snapshotDiff(before, snapshot(roots));

    expect(diff).toContainEqual(expect.stringMatching(new RegExp(`^created ${home}/dev/comfyume/data/outputs/user001/final_cut\\.mp4: file 5 bytes`)));
    expect(diff).toContainEqual(expect.stringMatching(new RegExp(`^changed ${etc}/hosts: file 20 bytes.* => file 35 bytes`)));
    expect(diff).toContain(`removed ${etc}/gone`);
    expect(diff).toContainEqual(expect.stringMatching(new RegExp(`^changed ${home}/dev: dir`)));
    // The unchanged symlink (never followed) and the absent root are not reported.
    expect(diff.some((l) => l.includes("mtab") || l.includes("/mnt"))).toBe(false);
    expect(snapshotDiff(before, snapshot(roots), (f) => f.startsWith(home) || f.startsWith(etc))).toEqual([]);
  });
});
