// mount-sfs.sh and prepare-scratch.sh: real fstab files, real mkfs.ext4/mkfs.vfat/blkid/debugfs
// on file images; only mount/mountpoint are shims (no loop devices or NFS here).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HOST, REPO, cleanupTmp, makeShims, run, sha256, tmp, write } from "./helpers";

afterAll(() => cleanupTmp());

function image(path: string, mb = 16): void {
  const r = spawnSync("truncate", ["-s", `${mb}M`, path]);
  expect(r.status).toBe(0);
}
function blkidType(path: string): string {
  return spawnSync("blkid", ["-p", "-o", "value", "-s", "TYPE", path], { encoding: "utf8" }).stdout.trim();
}
function blkidUuid(path: string): string {
  return spawnSync("blkid", ["-p", "-o", "value", "-s", "UUID", path], { encoding: "utf8" }).stdout.trim();
}

describe("mount-sfs", () => {
  const target = "nfs.fin-01.datacrunch.io:/SFS-Model-Vault-22-Jan-01-4xR2NHBi-f8d2ff3a";

  it("mounts the target handed in, writes one fstab line with nofail and nconnect=16, idempotently", async () => {
    const shims = makeShims();
    const root = tmp("sfsroot");
    write(join(root, "etc/fstab"), "# static\nUUID=abc / ext4 defaults 0 1\n");
    write(join(shims.nfsExports, "nfs.fin-01.datacrunch.io/SFS-Model-Vault-22-Jan-01-4xR2NHBi-f8d2ff3a/.keep"), "");
    const env = { ...shims.env, COMFYUME_ROOT: root, SFS_MOUNT_RETRY_DELAY: "0" };
    const r1 = await run("mount-sfs.sh", ["--target", target], { env });
    expect(r1.code, r1.stderr).toBe(0);
    const fstab = readFileSync(join(root, "etc/fstab"), "utf8");
    expect(fstab).toContain("UUID=abc / ext4 defaults 0 1");
    const line = `${target} ${root}/mnt/sfs nfs nconnect=16,nofail,_netdev 0 0`;
    expect(fstab.split("\n").filter((l) => l === line)).toHaveLength(1);
    expect(shims.calls()).toContain(`mount -t nfs -o nconnect=16 ${target} ${root}/mnt/sfs`);
    // The write/read probe cleaned up after itself.
    expect(spawnSync("ls", ["-A", join(root, "mnt/sfs")], { encoding: "utf8" }).stdout).toBe("");

    const r2 = await run("mount-sfs.sh", ["--target", target], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(join(root, "etc/fstab"), "utf8")).toBe(fstab);
    expect(shims.calls().filter((c) => c.startsWith("mount "))).toHaveLength(1);
    expect(r2.stderr).toMatch(/mount\s+[\d.]+\s+unchanged/);
    expect(r2.stderr).toMatch(/fstab\s+[\d.]+\s+unchanged/);
  });

  it("replaces the fstab line of an old pseudo path (keeping a .bak)", async () => {
    const shims = makeShims();
    const root = tmp("sfsroot");
    write(join(root, "etc/fstab"), `nfs.fin-01.datacrunch.io:/OLD-path ${root}/mnt/sfs nfs defaults 0 0\n`);
    write(join(shims.nfsExports, "nfs.fin-01.datacrunch.io/SFS-Model-Vault-22-Jan-01-4xR2NHBi-f8d2ff3a/.keep"), "");
    const r = await run("mount-sfs.sh", ["--target", target], { env: { ...shims.env, COMFYUME_ROOT: root } });
    expect(r.code, r.stderr).toBe(0);
    const fstab = readFileSync(join(root, "etc/fstab"), "utf8");
    expect(fstab).not.toContain("OLD-path");
    expect(spawnSync("sh", ["-c", `cat ${root}/etc/fstab.comfyume-*.bak`], { encoding: "utf8" }).stdout).toContain("OLD-path");
  });

  it("fails clearly when the share is unreachable (not shared with this instance)", async () => {
    const shims = makeShims();
    const root = tmp("sfsroot");
    const r = await run("mount-sfs.sh", ["--target", target], {
      env: { ...shims.env, COMFYUME_ROOT: root, SFS_MOUNT_RETRY_DELAY: "0" },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FAILED in step 'mount'/);
    expect(r.stderr).toMatch(/access denied by server/);
    expect(r.stderr).toMatch(/share settings/);
    expect(existsSync(join(root, "etc/fstab")) ? readFileSync(join(root, "etc/fstab"), "utf8") : "").not.toContain(target);
  });

  it("rejects a whole mount command or an empty target, naming the setting", async () => {
    const shims = makeShims();
    const r1 = await run("mount-sfs.sh", ["--target", `sudo mount -t nfs -o nconnect=16 ${target} /mnt/sfs`], { env: { ...shims.env, COMFYUME_ROOT: tmp("r") } });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/SFS_TARGET .* is not HOST:\/PATH/);
    const r2 = await run("mount-sfs.sh", [], { env: { ...shims.env, COMFYUME_ROOT: tmp("r") } });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/SFS_TARGET is empty/);
  });
});

describe("prepare-scratch", () => {
  function env(root: string, shims: ReturnType<typeof makeShims>) {
    return { ...shims.env, COMFYUME_ROOT: root, SCRATCH_ALLOW_FILE: "1" };
  }

  it("formats a blank device, mounts it and creates inputs/ outputs/ (1777) temp/", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    image(dev);
    expect(blkidType(dev)).toBe("");
    const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims) });
    expect(r.code, r.stderr).toBe(0);
    expect(blkidType(dev)).toBe("ext4");
    expect(r.stderr).toMatch(/format-if-blank\s+[\d.]+\s+formatted/);
    for (const d of ["inputs", "outputs", "temp"]) expect(existsSync(join(root, "mnt/scratch", d))).toBe(true);
    expect((statSync(join(root, "mnt/scratch/outputs")).mode & 0o7777).toString(8)).toBe("1777");
    // A stable id, never the /dev/vdX name that can change between boots.
    const fstab = readFileSync(join(root, "etc/fstab"), "utf8");
    expect(fstab).toContain(`UUID=${blkidUuid(dev)} ${root}/mnt/scratch ext4 defaults,nofail 0 2`);
    expect(fstab).not.toContain(dev);
  });

  it("NEVER formats a device that already holds ext4: its content survives, twice", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    image(dev);
    expect(spawnSync("mkfs.ext4", ["-q", "-L", "scratch", dev]).status).toBe(0);
    const payload = join(root, "payload.txt");
    writeFileSync(payload, "user output that must survive\n");
    expect(spawnSync("debugfs", ["-w", "-R", `write ${payload} precious.txt`, dev]).status).toBe(0);
    const uuid = blkidUuid(dev);
    for (let i = 0; i < 2; i++) {
      const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/format-if-blank\s+[\d.]+\s+kept/);
    }
    expect(blkidUuid(dev)).toBe(uuid);
    const cat = spawnSync("debugfs", ["-R", "cat precious.txt", dev], { encoding: "utf8" });
    expect(cat.stdout).toBe("user output that must survive\n");
  });

  it.each(["vfat", "an MBR partition table"])("refuses a device with %s and leaves it untouched", async (kind) => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdc.img");
    image(dev, 40);
    if (kind === "vfat") expect(spawnSync("mkfs.vfat", [dev]).status).toBe(0);
    else {
      // One Linux partition entry (start 2048, 8192 sectors) and the boot signature.
      const mbr = Buffer.alloc(512);
      mbr.writeUInt8(0x83, 446 + 4);
      mbr.writeUInt32LE(2048, 446 + 8);
      mbr.writeUInt32LE(8192, 446 + 12);
      mbr.writeUInt16LE(0xaa55, 510);
      const fd = openSync(dev, "r+");
      writeSync(fd, mbr, 0, 512, 0);
      closeSync(fd);
      expect(spawnSync("blkid", ["-p", "-o", "value", "-s", "PTTYPE", dev], { encoding: "utf8" }).stdout.trim()).toBe("dos");
    }
    const before = spawnSync("sha256sum", [dev], { encoding: "utf8" }).stdout.split(" ")[0];
    const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to format/);
    expect(spawnSync("sha256sum", [dev], { encoding: "utf8" }).stdout.split(" ")[0]).toBe(before);
    expect(shims.calls().filter((c) => c.startsWith("mount "))).toHaveLength(0);
  });

  it("refuses a missing device and a regular file (without the test switch)", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const r1 = await run("prepare-scratch.sh", ["--target", "vdz"], { env: { ...shims.env, COMFYUME_ROOT: root, DEV_DIR: root } });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/is not a block device; is the volume attached/);
    const dev = join(root, "x.img");
    image(dev);
    const r2 = await run("prepare-scratch.sh", ["--device", dev], { env: { ...shims.env, COMFYUME_ROOT: root } });
    expect(r2.code).toBe(1);
    expect(blkidType(dev)).toBe("");
  });

  // Verda names an attached volume /dev/disk/by-id/virtio-<last 12 hex digits of its id>
  // (verda-api.md section 10, item 5); sim/local-cloud/volumes.ts lays out the same name.
  const VOLUME_ID = "4c7d1a3e-9b2f-4e61-a8d5-0f3b6c2e9a17";
  const VIRTIO = "virtio-0f3b6c2e9a17";
  function byIdDir(root: string, links: Record<string, string>): string {
    const byId = join(root, "dev/disk/by-id");
    mkdirSync(byId, { recursive: true });
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(byId, name));
    return byId;
  }

  it("resolves the device from the full Verda volume id through its virtio-<last 12 digits> name", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdd.img");
    const part = join(root, "vdd1.img");
    const other = join(root, "vde.img");
    image(dev);
    image(part);
    image(other);
    // A partition link of the same disk and another volume sit next to it, as on a real host.
    const byId = byIdDir(root, { [VIRTIO]: dev, [`${VIRTIO}-part1`]: part, "virtio-111122223333": other });
    for (const id of [VOLUME_ID, VOLUME_ID.toUpperCase()]) {
      const r = await run("prepare-scratch.sh", ["--volume-id", id], { env: { ...env(root, shims), DEV_BY_ID_DIR: byId } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`scratch device: ${dev}`);
    }
    expect(blkidType(dev)).toBe("ext4");
    expect(blkidType(part)).toBe("");
    expect(blkidType(other)).toBe("");
    // Found by volume id: fstab names the by-id link, which follows the volume across boots.
    const fstab = readFileSync(join(root, "etc/fstab"), "utf8");
    expect(fstab).toContain(`${byId}/${VIRTIO} ${root}/mnt/scratch ext4 defaults,nofail 0 2`);
    expect(fstab).not.toContain(dev);
  });

  it("finds nothing under the full id or its first 12 digits, and touches no device", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdd.img");
    image(dev);
    const byId = byIdDir(root, { [`virtio-${VOLUME_ID}`]: dev, "virtio-4c7d1a3e9b2f": dev });
    const r = await run("prepare-scratch.sh", ["--volume-id", VOLUME_ID], { env: { ...env(root, shims), DEV_BY_ID_DIR: byId } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no ${byId}/${VIRTIO} for volume ${VOLUME_ID}`);
    expect(r.stderr).toMatch(/is the volume attached/);
    expect(blkidType(dev)).toBe("");
    expect(shims.calls().filter((c) => c.startsWith("mount "))).toHaveLength(0);
  });

  it("refuses a volume id whose digits name two different disks, and touches neither", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const mine = join(root, "vdd.img");
    const foreign = join(root, "vde.img");
    image(mine);
    image(foreign);
    const byId = byIdDir(root, { [VIRTIO]: mine, "scsi-0QEMU_QEMU_HARDDISK_0f3b6c2e9a17": foreign });
    const r = await run("prepare-scratch.sh", ["--volume-id", VOLUME_ID], { env: { ...env(root, shims), DEV_BY_ID_DIR: byId } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is ambiguous/);
    expect(blkidType(mine)).toBe("");
    expect(blkidType(foreign)).toBe("");
  });

  it("rejects something that is not a volume id before looking for devices", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdd.img");
    image(dev);
    // A glob-shaped value must not select every disk.
    const byId = byIdDir(root, { [VIRTIO]: dev });
    for (const id of ["*", "vol-worker-scratch", "0f3b6c2e9a1"]) {
      const r = await run("prepare-scratch.sh", ["--volume-id", id], { env: { ...env(root, shims), DEV_BY_ID_DIR: byId } });
      expect(r.code, id).toBe(1);
      expect(r.stderr).toMatch(/is not a Verda volume id/);
    }
    expect(blkidType(dev)).toBe("");
  });
});

// Format only on positive proof that the device is blank (issue 11, item 1): every probe error,
// and every device with bytes that blkid does not recognise, is refused with nothing written.
describe("prepare-scratch: probe safety", () => {
  function env(root: string, shims: ReturnType<typeof makeShims>, extra: Record<string, string> = {}) {
    return { ...shims.env, COMFYUME_ROOT: root, SCRATCH_ALLOW_FILE: "1", MKFS_CMD: recordingMkfs(root), ...extra };
  }
  /** mkfs.ext4, recording each call in <root>/mkfs-calls.log. */
  function recordingMkfs(root: string): string {
    const path = join(root, "bin/mkfs.ext4");
    if (!existsSync(path)) write(path, `#!/usr/bin/env bash\nprintf 'mkfs %s\\n' "$*" >>'${root}/mkfs-calls.log'\nexec mkfs.ext4 "$@"\n`, 0o755);
    return path;
  }
  const mkfsCalls = (root: string) => (existsSync(join(root, "mkfs-calls.log")) ? readFileSync(join(root, "mkfs-calls.log"), "utf8") : "");
  /** An ext4 image holding one user's file. */
  function scratchWithUserFile(dev: string, root: string): void {
    image(dev);
    expect(spawnSync("mkfs.ext4", ["-q", "-L", "scratch", dev]).status).toBe(0);
    const payload = join(root, "payload.txt");
    writeFileSync(payload, "user output that must survive\n");
    expect(spawnSync("debugfs", ["-w", "-R", `write ${payload} precious.txt`, dev]).status).toBe(0);
  }

  it("refuses, touching nothing, when blkid exits 2 because it cannot open the device (unprivileged run, mode 000)", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    scratchWithUserFile(dev, root);
    const before = sha256(dev);
    // Real blkid exits 2 ("nothing found") when open() fails; real dd says why.
    const wrapper = join(root, "as-nobody.sh");
    write(wrapper, `#!/usr/bin/env bash\nexec setpriv --reuid=65534 --regid=65534 --clear-groups bash '${HOST}/prepare-scratch.sh' "$@"\n`, 0o755);
    const tmpDir = join(root, "tmp");
    mkdirSync(tmpDir);
    recordingMkfs(root);
    for (const d of [root, join(shims.dir, "..")]) spawnSync("chmod", ["-R", "a+rwX", d]);
    chmodSync(dev, 0o000);
    const r = await run(wrapper, ["--device", dev], { env: env(root, shims, { TMPDIR: tmpDir }) });
    chmodSync(dev, 0o600);
    expect(r.code).toBe(1);
    expect(mkfsCalls(root)).toBe("");
    expect(r.stderr).toContain(`cannot read ${dev}`);
    expect(r.stderr).toMatch(/Permission denied/);
    expect(r.stderr).toMatch(/nothing was written/);
    expect(sha256(dev)).toBe(before);
    expect(shims.calls().filter((c) => c.startsWith("mount "))).toHaveLength(0);
  });

  it("refuses a device holding users' files when blkid reports no signature (exit 2 after a failed read)", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    scratchWithUserFile(dev, root);
    const before = sha256(dev);
    // blkid's own exit code when it cannot open or read: 2, the same as "nothing found".
    const blkid = join(root, "bin/blkid-io-error");
    write(blkid, "#!/usr/bin/env bash\nexit 2\n", 0o755);
    const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims, { BLKID_CMD: blkid }) });
    expect(r.code).toBe(1);
    expect(mkfsCalls(root)).toBe("");
    expect(r.stderr).toContain(`${dev} is not blank`);
    expect(r.stderr).toMatch(/refusing to format/);
    expect(sha256(dev)).toBe(before);
    expect(spawnSync("debugfs", ["-R", "cat precious.txt", dev], { encoding: "utf8" }).stdout).toBe("user output that must survive\n");
  });

  it("refuses a blkid that reports an error with exit 2, even on a zeroed device", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    image(dev);
    const blkid = join(root, "bin/blkid-error");
    write(blkid, `#!/usr/bin/env bash\necho "blkid: error: \${@: -1}: Input/output error" >&2\nexit 2\n`, 0o755);
    const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims, { BLKID_CMD: blkid }) });
    expect(r.code).toBe(1);
    expect(mkfsCalls(root)).toBe("");
    expect(r.stderr).toMatch(/Input\/output error/);
    expect(blkidType(dev)).toBe("");
  });

  it.each([
    ["random bytes at the start", 0],
    ["data in the middle of an otherwise zero device", 8 * 1024 * 1024],
    ["data at the very end", 16 * 1024 * 1024 - 4096],
  ])("never formats %s that no signature describes", async (_what, offset) => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    image(dev);
    const fd = openSync(dev, "r+");
    writeSync(fd, randomBytes(4096), 0, 4096, offset);
    closeSync(fd);
    expect(blkidType(dev)).toBe("");
    const before = sha256(dev);
    const r = await run("prepare-scratch.sh", ["--device", dev], { env: env(root, shims) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${dev} is not blank`);
    expect(mkfsCalls(root)).toBe("");
    expect(sha256(dev)).toBe(before);
  });

  it("--expect-data (and SCRATCH_EXPECT_DATA=1) keeps an ext4 scratch and never formats a blank one", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const blank = join(root, "vdb.img");
    image(blank);
    for (const [args, extra] of [[["--expect-data"], {}], [[], { SCRATCH_EXPECT_DATA: "1" }]] as const) {
      const r = await run("prepare-scratch.sh", ["--device", blank, ...args], { env: env(root, shims, extra) });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${blank} holds no ext4 filesystem`);
      expect(r.stderr).toMatch(/should already hold data/);
      expect(r.stderr).toMatch(/attach|volume/);
    }
    expect(mkfsCalls(root)).toBe("");
    expect(blkidType(blank)).toBe("");

    const dev = join(root, "vdc.img");
    scratchWithUserFile(dev, root);
    const uuid = blkidUuid(dev);
    const ok = await run("prepare-scratch.sh", ["--device", dev, "--expect-data"], { env: env(root, shims) });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/format-if-blank\s+[\d.]+\s+kept/);
    expect(blkidUuid(dev)).toBe(uuid);
    expect(readFileSync(join(root, "etc/fstab"), "utf8")).toContain(`UUID=${uuid} ${root}/mnt/scratch ext4 defaults,nofail 0 2`);
  });
  it("--formatted-marker: the first day formats a blank month scratch and records it; from then on it is never formatted", async () => {
    const shims = makeShims();
    const root = tmp("scr");
    const dev = join(root, "vdb.img");
    image(dev);
    const marker = join(root, "mnt/sfs/.comfyume/scratch-formatted/vdb");
    const day1 = await run("prepare-scratch.sh", ["--device", dev, "--formatted-marker", marker], { env: env(root, shims) });
    expect(day1.code, day1.stderr).toBe(0);
    expect(day1.stderr).toMatch(/format-if-blank\s+[\d.]+\s+formatted/);
    const uuid = blkidUuid(dev);
    expect(readFileSync(marker, "utf8")).toContain(`UUID=${uuid}`);

    // Overnight the volume comes back blank (wrong volume attached, or its filesystem lost): the
    // marker says this scratch held users' files, so it is refused, never formatted again.
    const zero = spawnSync("dd", ["if=/dev/zero", `of=${dev}`, "bs=1M", "count=16", "conv=notrunc"]);
    expect(zero.status).toBe(0);
    const calls = mkfsCalls(root);
    const day2 = await run("prepare-scratch.sh", ["--device", dev, "--formatted-marker", marker], { env: env(root, shims) });
    expect(day2.code).toBe(1);
    expect(day2.stderr).toMatch(/should already hold data/);
    expect(day2.stderr).toContain(marker);
    expect(mkfsCalls(root)).toBe(calls);
  });
});

describe("fstab, written by mount-sfs and prepare-scratch running side by side (the day's chain)", () => {
  it("concurrent fstab_set_entry calls keep every line (one read-modify-write at a time)", async () => {
    const root = tmp("fstabrace");
    const fstab = join(root, "etc/fstab");
    write(fstab, "# static\nUUID=abc / ext4 defaults 0 1\n");
    const writers = Array.from({ length: 12 }, (_, i) => {
      const script = join(root, `writer-${i}.sh`);
      write(script, `set -euo pipefail\nsource ${JSON.stringify(join(REPO, "scripts/lib/common.sh"))}\nfstab_set_entry ${JSON.stringify(fstab)} /mnt/m${i} "dev${i} /mnt/m${i} ext4 defaults 0 0"\n`);
      return run(script, []);
    });
    for (const r of await Promise.all(writers)) expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(fstab, "utf8").split("\n");
    expect(lines).toContain("UUID=abc / ext4 defaults 0 1");
    expect(Array.from({ length: 12 }, (_, i) => `dev${i} /mnt/m${i} ext4 defaults 0 0`).filter((l) => !lines.includes(l))).toEqual([]);
  });
});
