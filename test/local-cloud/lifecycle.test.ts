// The local cloud starts, serves and closes leaving nothing behind: its directory is gone, no mount
// (machine overlays, SFS file systems) and no loop device is left, its loopback ports are free, and a second cloud on the same addresses starts right after.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { startLocalCloud } from "../../sim/local-cloud";

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("local cloud lifecycle", () => {
  it("closes cleanly and can start again at once on the same addresses", async () => {
    const opts = { loopbackNet: "127.79.0", modelSizesMiB: [1, 1, 1] as [number, number, number] };
    const first = await startLocalCloud(opts);
    const s3Url = new URL(first.s3.endpoint);
    const endpoints = [
      { host: first.mello.host, port: first.mello.port },
      { host: first.env.COMFYUME_SIM_REDIS_HOST!, port: Number(first.env.COMFYUME_SIM_REDIS_PORT) },
      { host: "127.0.0.1", port: first.verda.port },
      { host: s3Url.hostname, port: Number(s3Url.port) },
    ];
    for (const e of endpoints) expect(await portOpen(e.host, e.port), `${e.host}:${e.port}`).toBe(true);
    expect(first.seed.objects).toBeGreaterThan(10);
    expect(first.env.COMFYUME_SIM_R2_ACCESS_KEY_ID).toMatch(/^[0-9a-f]{32}$/);
    expect(first.env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY).toMatch(/^[0-9a-f]{64}$/);
    await first.close();
    expect(existsSync(first.dir)).toBe(false);
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(first.dir);
    expect(spawnSync("losetup", ["-l", "-n", "-O", "BACK-FILE"], { encoding: "utf8" }).stdout).not.toContain(first.dir);
    for (const e of endpoints) expect(await portOpen(e.host, e.port), `${e.host}:${e.port} after close`).toBe(false);

    // A crashed run's leftovers (its owner is dead) are swept at start; a live run's are not touched.
    const crashed = mkdtempSync(path.join(tmpdir(), "comfyume-local-cloud-"));
    writeFileSync(path.join(crashed, "owner.pid"), String(spawnSync("true").pid));
    expect(spawnSync("mkdir", [path.join(crashed, "sfs")]).status).toBe(0);
    expect(spawnSync("mount", ["-t", "tmpfs", "leftover", path.join(crashed, "sfs")]).status).toBe(0);
    expect(spawnSync("truncate", ["-s", "8M", path.join(crashed, "disk.img")]).status).toBe(0);
    expect(spawnSync("losetup", ["--find", path.join(crashed, "disk.img")]).status).toBe(0);
    const live = mkdtempSync(path.join(tmpdir(), "comfyume-local-cloud-"));
    writeFileSync(path.join(live, "owner.pid"), String(process.pid));
    const second = await startLocalCloud(opts);
    expect(existsSync(crashed)).toBe(false);
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(crashed);
    expect(spawnSync("losetup", ["-l", "-n", "-O", "BACK-FILE"], { encoding: "utf8" }).stdout).not.toContain(crashed);
    expect(existsSync(live)).toBe(true);
    rmSync(live, { recursive: true, force: true });
    try {
      expect(second.mello.host).toBe(first.mello.host);
      expect(second.mello.port).toBe(first.mello.port);
      expect(await portOpen(second.mello.host, second.mello.port)).toBe(true);
    } finally {
      await second.close();
    }
    expect(existsSync(second.dir)).toBe(false);
  });
});
