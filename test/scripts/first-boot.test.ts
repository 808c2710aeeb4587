// The first-boot startup script built by components/host-identity.ts, run with real bash against an
// SFS cache written by the real backup-instance.sh (snapshots in <set>/<stamp>/, `latest` a file
// naming the newest). Only mount, mountpoint and systemctl are shims; keys land in a sandbox root.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { firstBootScript } from "../../components/host-identity";
import { toolchainFirstBootScript } from "../../components/toolchain";
import { cleanupTmp, makeInstanceRoot, makeShims, run, tmp, write } from "./helpers";

afterAll(() => cleanupTmp());

/** A startup script Verda stores in plaintext: ASCII, no secret-looking value, shellcheck-clean. */
function expectCleanStartupScript(script: string, dirName: string): void {
  expect(script).toMatch(/^[\x00-\x7f]*$/);
  // No KEY=value for a secret, no auth key (the program tests also check the planted secrets).
  expect(script).not.toMatch(/PASSWORD=|SECRET|AUTH_KEY|tskey-/);
  const file = join(tmp(dirName), "first-boot.sh");
  writeFileSync(file, script);
  const sc = spawnSync("shellcheck", ["--severity=style", file], { encoding: "utf8" });
  expect(sc.error).toBeUndefined();
  expect(sc.stdout + sc.stderr).toBe("");
}

const SET = "comfyume-workshop-day";
const NFS_HOST = "nfs.fin-01.datacrunch.io";
const PSEUDO = "SFS-comfyume-workshop-month-4xR2NHBi";

/** Host A backs up its identity into a fresh SFS directory; returns the SFS and host A's root. */
async function backedUp(): Promise<{ sfs: string; hostA: string; setDir: string }> {
  const hostA = tmp("fb-hostA");
  makeInstanceRoot(hostA, "100.64.0.12");
  const sfs = join(tmp("fb-sfs"), "mnt/sfs");
  mkdirSync(sfs, { recursive: true });
  const r = await run("backup-instance.sh", ["--sfs", sfs, "--name", SET, "--min-free-mb", "1"], { env: { COMFYUME_ROOT: hostA } });
  expect(r.code, r.stderr).toBe(0);
  return { sfs, hostA, setDir: join(sfs, "cache/backups", SET) };
}

/** A fresh instance B with its own key; runs the generated first-boot script there. */
async function firstBoot(sfs: string) {
  const shims = makeShims();
  write(join(shims.nfsExports, NFS_HOST, PSEUDO, ".keep"), "");
  // mount.nfs present (no apt-get); logger silenced so tests write nothing to the system log.
  const bin = join(shims.dir, "..", "path");
  write(join(bin, "mount.nfs"), "#!/bin/sh\nexit 0\n", 0o755);
  write(join(bin, "logger"), "#!/bin/sh\nexit 0\n", 0o755);
  const hostB = tmp("fb-hostB");
  write(join(hostB, "etc/ssh/ssh_host_ed25519_key"), "FRESH-KEY-OF-B\n", 0o600);
  write(join(hostB, "etc/ssh/ssh_host_ed25519_key.pub"), "ssh-ed25519 FRESH-B\n", 0o644);
  const file = join(tmp("fb-script"), "first-boot.sh");
  writeFileSync(file, firstBootScript({ sfsMountTarget: `${NFS_HOST}:/${PSEUDO}`, sfsMount: sfs, backupSet: SET }));
  const r = await run(file, [], { env: { ...shims.env, COMFYUME_ROOT: hostB, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` } });
  return { r, hostB, shims, file };
}

const key = (root: string, name = "ssh_host_ed25519_key") => readFileSync(join(root, "etc/ssh", name), "utf8");

describe("first-boot script", () => {
  it("installs the identity of the snapshot `latest` names, mounts the SFS first and restarts sshd", async () => {
    const { sfs, hostA, setDir } = await backedUp();
    const first = readFileSync(join(setDir, "latest"), "utf8").trim();
    // A later snapshot with another key: `latest` (a file) now names it, and it must win.
    await new Promise((r) => setTimeout(r, 1100));
    write(join(hostA, "etc/ssh/ssh_host_ed25519_key"), "ROTATED-KEY-OF-A\n", 0o600);
    write(join(hostA, "etc/ssh/ssh_host_ed25519_key.pub"), "ssh-ed25519 ROTATED-A\n", 0o644);
    const r2 = await run("backup-instance.sh", ["--sfs", sfs, "--name", SET, "--min-free-mb", "1"], { env: { COMFYUME_ROOT: hostA } });
    expect(r2.code, r2.stderr).toBe(0);
    const second = readFileSync(join(setDir, "latest"), "utf8").trim();
    expect(second).not.toBe(first);
    expect(statSync(join(setDir, "latest")).isFile()).toBe(true);

    const { r, hostB, shims } = await firstBoot(sfs);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`restored the SSH host identity of snapshot ${second}`);
    expect(key(hostB)).toBe("ROTATED-KEY-OF-A\n");
    expect(key(hostB, "ssh_host_ed25519_key.pub")).toBe("ssh-ed25519 ROTATED-A\n");
    expect(statSync(join(hostB, "etc/ssh/ssh_host_ed25519_key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(hostB, "etc/ssh/ssh_host_ed25519_key.pub")).mode & 0o777).toBe(0o644);
    const calls = shims.calls();
    expect(calls[0]).toBe(`mount -t nfs -o nconnect=16 ${NFS_HOST}:/${PSEUDO} ${sfs}`);
    expect(calls).toContain("systemctl restart ssh");
  });

  it("keeps the instance's own keys (exit 1, said why) when the set has no snapshot", async () => {
    const sfs = join(tmp("fb-sfs"), "mnt/sfs");
    write(join(sfs, "cache/backups", SET, ".keep"), "");
    const { r, hostB, shims } = await firstBoot(sfs);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/latest is missing; keeping this instance's own keys/);
    expect(key(hostB)).toBe("FRESH-KEY-OF-B\n");
    expect(shims.calls().filter((c) => c.startsWith("systemctl"))).toEqual([]);
  });

  it("refuses an archive that does not match the snapshot's manifest, and a `latest` that names no snapshot", async () => {
    const { sfs, setDir } = await backedUp();
    const stamp = readFileSync(join(setDir, "latest"), "utf8").trim();
    const archive = join(setDir, stamp, "ssh-host-keys.tar.gz");
    const good = readFileSync(archive);
    const torn = Buffer.from(good);
    torn[torn.length - 1] ^= 0xff;
    writeFileSync(archive, torn);
    const a = await firstBoot(sfs);
    expect(a.r.code).toBe(1);
    expect(a.r.stdout).toMatch(/does not match .*MANIFEST\.sha256/);
    expect(key(a.hostB)).toBe("FRESH-KEY-OF-B\n");

    writeFileSync(archive, good);
    writeFileSync(join(setDir, "latest"), "../../../etc\n");
    const b = await firstBoot(sfs);
    expect(b.r.code).toBe(1);
    expect(b.r.stdout).toMatch(/does not name a snapshot/);
    expect(key(b.hostB)).toBe("FRESH-KEY-OF-B\n");
  });

  it("is ASCII, holds no secret-looking value and passes shellcheck", async () => {
    expectCleanStartupScript(firstBootScript({ sfsMountTarget: `${NFS_HOST}:/${PSEUDO}`, sfsMount: "/mnt/sfs", backupSet: SET }), "fb-sc");
  });

  it("the unpinned worker's toolchain first boot is ASCII, holds no secret and passes shellcheck too", () => {
    expectCleanStartupScript(toolchainFirstBootScript(), "fb-tc-sc");
  });
});
