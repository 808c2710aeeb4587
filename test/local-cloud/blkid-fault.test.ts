// The blkid shim: the real blkid on a scratch image, unless the volume carries the fault flag
// probe-io-error; then the probe fails as blkid does on an unreadable device (exit 2, I/O error).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SHIMS_DIR } from "../../sim/local-cloud/namespace";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blkid-shim-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const blkid = (dev: string) =>
  spawnSync(path.join(SHIMS_DIR, "blkid"), ["-p", "-o", "value", "-s", "TYPE", dev], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${SHIMS_DIR}:${process.env.PATH}` },
  });

describe("local cloud: blkid shim", () => {
  it("probes for real, and fails with an I/O error while the volume's fault flag is set", () => {
    const image = path.join(dir, "vol-1", "disk.img");
    fs.mkdirSync(path.dirname(image));
    expect(spawnSync("truncate", ["-s", "8M", image]).status).toBe(0);
    expect(spawnSync("mkfs.ext4", ["-q", "-F", image]).status).toBe(0);
    const link = path.join(dir, "vdb");
    fs.symlinkSync(image, link);
    const ok = blkid(link);
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toBe("ext4");
    fs.writeFileSync(path.join(dir, "vol-1", "probe-io-error"), "");
    const bad = blkid(link);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/Input\/output error/);
  });
});
