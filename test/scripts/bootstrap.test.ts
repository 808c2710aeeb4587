// The host toolchain bootstrap (scripts/host/bootstrap-host.sh) on machines made from the simulated
// cloud's stock image, which, like Verda's Ubuntu images, lacks rclone, jq and nfs-common. apt on the
// machines reaches only the package mirror on loopback (the stand-in for the distribution's archive),
// whose request log tells whether a host downloaded anything. The SFS is a directory bind-mounted
// into the machines that share it. Nothing here runs apt-get on the build machine.
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstBootScript } from "../../components/host-identity";
import { FIRST_BOOT_LOCK, FIRST_BOOT_LOG, FIRST_BOOT_REST_LOCK, toolchainFirstBootScript } from "../../components/toolchain";
import { startPackageMirror, type PackageMirror } from "../../sim/local-cloud/package-mirror";
import { bootstrapCommand, bootstrapResult, stockMachine, type StockMachine } from "./bootstrap-machine";

const ROOTFS = process.env.COMFYUME_SIM_ROOTFS ?? "";
const MIRROR_DIR = process.env.COMFYUME_SIM_MIRROR ?? "";
const ready = process.getuid?.() === 0 && existsSync(path.join(ROOTFS, "etc/os-release")) && existsSync(path.join(MIRROR_DIR, "Packages"));
/** The cache of this image's distribution and architecture, as the bootstrap lays it out. */
const CACHE_KEY = "bookworm-amd64";
const IN_MACHINE_CACHE = "/mnt/sfs/.comfyume/toolchain";
/** What the backup engine does with the two tools: list files with hashes (rclone), count them (jq). */
const BACKUP_TOOLS_RUN = "RCLONE_CONFIG=/dev/null rclone lsjson --hash /opt/comfyume/lib | jq -e 'length > 0 and (.[0].Hashes | has(\"md5\"))'";

if (!ready && process.env.CI) throw new Error("CI must run the bootstrap tests: root, COMFYUME_SIM_ROOTFS or COMFYUME_SIM_MIRROR is missing (run npm run setup as root)");

describe.runIf(ready)("bootstrap-host.sh on a stock image", () => {
  let dir: string;
  let mirror: PackageMirror;
  let sfs: string;
  let hostA: StockMachine;
  let hostB: StockMachine;
  const debsFetched = () => mirror.requests().filter((r) => r.endsWith(".deb"));
  const machine = (name: string, sfsDir?: string) => stockMachine(name, { dir: path.join(dir, name), rootfs: ROOTFS, sourcesLine: mirror.sourcesLine, sfs: sfsDir });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "comfyume-bootstrap-"));
    mirror = await startPackageMirror({ dir: MIRROR_DIR, host: "127.91.0.3" });
    sfs = path.join(dir, "sfs");
    hostA = machine("host-a", sfs);
    hostB = machine("host-b", sfs);
  });
  afterAll(async () => {
    await mirror?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the image lacks rclone and jq: the first host downloads and installs them, and fills the SFS cache", async () => {
    const before = await hostA.run("command -v rclone || command -v jq || echo none-present");
    expect(before.stdout.trim()).toBe("none-present");
    expect((await hostA.run(BACKUP_TOOLS_RUN)).code).not.toBe(0);

    const r = await hostA.run(bootstrapCommand("--cache", IN_MACHINE_CACHE));
    expect(r.code, r.stderr).toBe(0);
    const result = bootstrapResult(r.stdout);
    expect(result?.how, r.stdout).toBe("downloaded");
    expect(result?.tools.rclone).toMatch(/^1\.60\./);
    expect(result?.tools.jq).toMatch(/^1\.[6-9]/);
    expect(result?.tools["mount.nfs"]).toMatch(/^2\./);
    expect(debsFetched().some((p) => p.startsWith("/rclone_"))).toBe(true);
    expect(debsFetched().some((p) => p.startsWith("/jq_"))).toBe(true);

    const tools = await hostA.run(BACKUP_TOOLS_RUN);
    expect(tools.code, tools.stderr).toBe(0);
    expect(tools.stdout.trim()).toBe("true");

    // The cache: every downloaded .deb with its sha256 and its exact version.
    const cache = path.join(sfs, ".comfyume/toolchain", CACHE_KEY);
    const sums = readFileSync(path.join(cache, "SHA256SUMS"), "utf8");
    const debs = readdirSync(cache).filter((f) => f.endsWith(".deb")).sort();
    expect(debs.length).toBe(debsFetched().length);
    expect(sums.trim().split("\n").map((l) => l.split(/\s+\*?/)[1]).sort()).toEqual(debs);
    expect(readFileSync(path.join(cache, "PACKAGES"), "utf8")).toMatch(/^rclone\t1\.60\.1\S*\t/m);
  }, 600_000);

  it("a second fresh host with the SFS cache installs from it with no download at all", async () => {
    const served = mirror.requests().length;
    expect((await hostB.run("command -v rclone || echo absent")).stdout.trim()).toBe("absent");
    const r = await hostB.run(bootstrapCommand("--cache", IN_MACHINE_CACHE));
    expect(r.code, r.stderr).toBe(0);
    expect(bootstrapResult(r.stdout)?.how, r.stderr).toBe("installed-from-cache");
    expect(mirror.requests().slice(served)).toEqual([]);
    const tools = await hostB.run(BACKUP_TOOLS_RUN);
    expect(tools.code, tools.stderr).toBe(0);
  }, 600_000);

  it("on a host that has everything, the bootstrap is the fast path: nothing installed, nothing fetched", async () => {
    const served = mirror.requests().length;
    const r = await hostB.run(bootstrapCommand("--cache", IN_MACHINE_CACHE));
    expect(r.code, r.stderr).toBe(0);
    const result = bootstrapResult(r.stdout);
    expect(result?.how, r.stdout).toBe("ok");
    expect(Object.keys(result?.tools ?? {}).sort()).toEqual(["blkid", "curl", "find", "flock", "jq", "mkfs.ext4", "mount.nfs", "rclone", "sha256sum"]);
    expect(mirror.requests().slice(served)).toEqual([]);
  }, 120_000);

  it("refuses a cache with a corrupted .deb, naming it: fails with --no-download, downloads otherwise and rewrites the cache", async () => {
    // A copy of the month's cache with one byte appended to jq's package.
    const badSfs = path.join(dir, "sfs-corrupt");
    cpSync(sfs, badSfs, { recursive: true, verbatimSymlinks: true });
    const cache = path.join(badSfs, ".comfyume/toolchain", CACHE_KEY);
    const jqDeb = readdirSync(cache).find((f) => f.startsWith("jq_"))!;
    appendFileSync(path.join(cache, jqDeb), "x");
    const hostC = machine("host-c", badSfs);

    const served = mirror.requests().length;
    const offline = await hostC.run(bootstrapCommand("--cache", IN_MACHINE_CACHE, "--no-download"));
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain(`${jqDeb}: FAILED`);
    expect(offline.stderr).toMatch(/missing: .*rclone \(rclone >= 1\.60\).*jq \(jq >= 1\.6\)/);
    expect(mirror.requests().slice(served)).toEqual([]);
    expect((await hostC.run("command -v jq || echo absent")).stdout.trim()).toBe("absent");

    const online = await hostC.run(bootstrapCommand("--cache", IN_MACHINE_CACHE));
    expect(online.code, online.stderr).toBe(0);
    expect(online.stderr).toContain(`${jqDeb}: FAILED`);
    expect(bootstrapResult(online.stdout)?.how).toBe("downloaded");
    expect(mirror.requests().slice(served).some((p) => p.startsWith("/jq_"))).toBe(true);
    // The rewritten cache verifies again.
    const check = await hostC.run(`cd ${IN_MACHINE_CACHE}/${CACHE_KEY} && sha256sum --strict -c SHA256SUMS`);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  }, 600_000);

  it("two hosts downloading at once both publish complete caches: the one left verifies and serves a third host", async () => {
    const sharedSfs = path.join(dir, "sfs-concurrent");
    const [x, y] = [machine("host-x", sharedSfs), machine("host-y", sharedSfs)];
    const [rx, ry] = await Promise.all([x.run(bootstrapCommand("--cache", IN_MACHINE_CACHE)), y.run(bootstrapCommand("--cache", IN_MACHINE_CACHE))]);
    expect(rx.code, rx.stderr).toBe(0);
    expect(ry.code, ry.stderr).toBe(0);
    expect(`${rx.stderr}${ry.stderr}`.match(/toolchain cache written/g)?.length).toBe(2);
    const z = machine("host-z", sharedSfs);
    const served = mirror.requests().length;
    const rz = await z.run(`(cd ${IN_MACHINE_CACHE}/${CACHE_KEY} && sha256sum --strict --quiet -c SHA256SUMS) && ${bootstrapCommand("--cache", IN_MACHINE_CACHE, "--no-download")}`);
    expect(rz.code, rz.stderr).toBe(0);
    expect(bootstrapResult(rz.stdout)?.how).toBe("installed-from-cache");
    expect(mirror.requests().slice(served)).toEqual([]);
  }, 900_000);

  it("--no-download without a cache fails naming every missing tool, its package and the fix", async () => {
    const hostD = machine("host-d");
    const served = mirror.requests().length;
    const r = await hostD.run(bootstrapCommand("--no-download"));
    expect(r.code).toBe(1);
    const last = r.stderr.trimEnd().split("\n").pop() ?? "";
    expect(last).toMatch(/missing: mount\.nfs \(nfs-common\).*rclone \(rclone >= 1\.60\).*jq \(jq >= 1\.6\)/);
    expect(last).toContain("--no-download");
    expect(last).toMatch(/run it without --no-download|--cache/);
    expect(mirror.requests().slice(served)).toEqual([]);
  }, 120_000);

  it("the archive unreachable: fails naming the source it tried and the fix, installs nothing", async () => {
    const unreachable = "deb [trusted=yes] http://127.91.0.3:9/ ./";
    const hostU = stockMachine("host-u", { dir: path.join(dir, "host-u"), rootfs: ROOTFS, sourcesLine: unreachable });
    const r = await hostU.run(bootstrapCommand());
    expect(r.code).toBe(1);
    const last = r.stderr.trimEnd().split("\n").pop() ?? "";
    expect(last).toContain(`apt-get update failed (sources: ${unreachable})`);
    expect(last).toContain("Fix: check the host's network and apt sources");
    expect((await hostU.run("command -v rclone || command -v jq || echo none-present")).stdout.trim()).toBe("none-present");
  }, 300_000);

  it("--pre-mount installs only what mounting the SFS needs (nfs-common); a non-root user goes through sudo", async () => {
    const hostE = machine("host-e");
    // A login user with passwordless sudo, as on Ubuntu cloud images.
    mkdirSync(path.join(hostE.upper, "etc/sudoers.d"), { recursive: true });
    writeFileSync(path.join(hostE.upper, "etc/sudoers.d/dev"), "dev ALL=(ALL) NOPASSWD:ALL\n", { mode: 0o440 });
    expect((await hostE.run("useradd -m dev")).code).toBe(0);
    const r = await hostE.run(`runuser -u dev -- ${bootstrapCommand("--pre-mount")}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("not root: re-running through sudo -n");
    const result = bootstrapResult(r.stdout);
    expect(result?.how).toBe("downloaded");
    expect(Object.keys(result?.tools ?? {})).toEqual(["mount.nfs"]);
    expect((await hostE.run("command -v mount.nfs && ! command -v jq && ! command -v rclone")).code).toBe(0);
  }, 600_000);

  it("--no-sfs (mello: never mounts the SFS) installs the rest of the toolchain and leaves nfs-common out", async () => {
    const hostM = machine("host-m");
    const served = mirror.requests().length;
    const r = await hostM.run(bootstrapCommand("--no-sfs"));
    expect(r.code, r.stderr).toBe(0);
    const result = bootstrapResult(r.stdout);
    expect(result?.how).toBe("downloaded");
    expect(Object.keys(result?.tools ?? {})).not.toContain("mount.nfs");
    expect(result?.tools.rclone).toMatch(/^1\.60\./);
    expect((await hostM.run(`${BACKUP_TOOLS_RUN} && ! command -v mount.nfs`)).code).toBe(0);
    expect(mirror.requests().slice(served).filter((p) => p.endsWith(".deb") && p.startsWith("/nfs-common_"))).toEqual([]);
    // Everything it needs present: the fast path, still without nfs-common.
    expect(bootstrapResult((await hostM.run(bootstrapCommand("--no-sfs"))).stdout)?.how).toBe("ok");
    // --no-sfs with --pre-mount asks for nothing: refused, naming both.
    const both = await hostM.run(bootstrapCommand("--no-sfs", "--pre-mount"));
    expect(both.code).toBe(1);
    expect(both.stderr).toContain("--no-sfs and --pre-mount");
  }, 600_000);

  it("a tool below its pin is named with both versions; a sandboxed host (COMFYUME_ROOT) never installs", async () => {
    const hostF = machine("host-f");
    const fake = await hostF.run("printf '#!/bin/sh\\necho jq-1.5\\n' >/usr/local/bin/jq && chmod +x /usr/local/bin/jq && " + bootstrapCommand("--no-download"));
    expect(fake.code).toBe(1);
    expect(fake.stderr).toContain("jq (jq >= 1.6): found 1.5");

    const served = mirror.requests().length;
    const sandboxed = await hostF.run(`COMFYUME_ROOT=/srv/sandbox ${bootstrapCommand()}`);
    expect(sandboxed.code).toBe(1);
    expect(sandboxed.stderr).toContain("COMFYUME_ROOT=/srv/sandbox");
    expect(mirror.requests().slice(served)).toEqual([]);
  }, 120_000);

  it("the first-boot script installs nfs-common before mounting the SFS, timed and logged", async () => {
    const hostG = machine("host-g");
    const script = firstBootScript({ sfsMountTarget: "nfs.fin-01.datacrunch.io:/SFS-x-4xR2NHBi", sfsMount: "/mnt/sfs", backupSet: "comfyume-workshop-day" });
    mkdirSync(path.join(hostG.upper, "root"), { recursive: true });
    writeFileSync(path.join(hostG.upper, "root/first-boot.sh"), script, { mode: 0o755 });
    const served = mirror.requests().length;
    // The NFS mount itself cannot happen here: mount and mountpoint succeed as no-ops, and the run then
    // stops at the missing snapshot (exit 1, the instance keeps its own keys).
    const r = await hostG.run("MOUNT_CMD=true MOUNTPOINT_CMD=true /root/first-boot.sh");
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/comfyume-first-boot: mount\.nfs missing: installing nfs-common/);
    expect(r.stdout).toMatch(/comfyume-first-boot: installed nfs-common \(mount\.nfs\) in \d+\.\ds/);
    expect(r.stdout).toContain("no snapshot of this backup set");
    expect(mirror.requests().slice(served).some((p) => p.startsWith("/nfs-common_"))).toBe(true);
    expect((await hostG.run("command -v mount.nfs")).code).toBe(0);
  }, 600_000);

  it("no pinned identity: first boot installs nfs-common, then the rest of the toolchain, in the background; each bootstrap waits only for its part, then takes the fast path", async () => {
    const hostH = machine("host-h", path.join(dir, "sfs-h"));
    mkdirSync(path.join(hostH.upper, "root"), { recursive: true });
    writeFileSync(path.join(hostH.upper, "root/first-boot.sh"), toolchainFirstBootScript(), { mode: 0o755 });
    const served = mirror.requests().length;
    // One command: each run is its own pid namespace, which would end the background install with it. Between the
    // two bootstraps, which lock is still held: the rest's is while rclone and jq install (the pre-mount one is not).
    const held = (lock: string) => `(flock -n ${lock} true && echo "${path.basename(lock)}: free" || echo "${path.basename(lock)}: held")`;
    const r = await hostH.run(
      `bash /root/first-boot.sh && ${bootstrapCommand("--pre-mount")} && ${held(FIRST_BOOT_LOCK)} && ${bootstrapCommand("--cache", IN_MACHINE_CACHE)} && ${BACKUP_TOOLS_RUN}`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/comfyume-first-boot: toolchain installing in the background \(pid \d+/);
    expect(r.stdout).toContain(`${path.basename(FIRST_BOOT_LOCK)}: free`);
    const results = r.stdout.split("\n").filter((l) => l.startsWith("bootstrap: "));
    expect(results.map((l) => l.split(" ")[1])).toEqual(["ok", "ok"]);
    expect(bootstrapResult(results[1])?.tools).toMatchObject({ rclone: expect.any(String), jq: expect.any(String) });
    // Both waited on their own lock, not on each other's.
    expect(r.stderr).toContain(`waited for ${FIRST_BOOT_LOCK}`);
    expect(r.stderr).toContain(`waited for ${FIRST_BOOT_REST_LOCK}`);
    // Downloaded once each, by the first-boot install: the bootstraps fetched nothing themselves.
    const fetched = mirror.requests().slice(served);
    for (const pkg of ["nfs-common", "rclone", "jq"]) expect(fetched.filter((p) => p.startsWith(`/${pkg}_`))).toHaveLength(1);
    // nfs-common first, alone: mounting the SFS never waits for rclone.
    const log = readFileSync(path.join(hostH.upper, FIRST_BOOT_LOG.slice(1)), "utf8");
    expect(log).toMatch(/installing nfs-common \(.*\)\n[\s\S]*comfyume-first-boot: apt-get update in \d+\.\ds\n[\s\S]*installed nfs-common in \d+\.\ds[\s\S]*installing rclone jq \(.*\)\n[\s\S]*installed rclone jq in \d+\.\ds/);
  }, 600_000);

  it("the first boot cannot reach the archive: it logs each failed part, and the full bootstrap installs from the SFS cache (filled by host-a above)", async () => {
    const hostJ = machine("host-j", sfs);
    mkdirSync(path.join(hostJ.upper, "root"), { recursive: true });
    writeFileSync(path.join(hostJ.upper, "root/first-boot.sh"), toolchainFirstBootScript(), { mode: 0o755 });
    // The archive unreachable for this host only (its sources point at a closed port).
    const sources = path.join(hostJ.upper, "etc/apt/sources.list.d/comfyume-sim-mirror.list");
    writeFileSync(sources, "deb [trusted=yes] http://127.91.0.3:9/ ./\n");
    const r = await hostJ.run(`bash /root/first-boot.sh && ${bootstrapCommand("--cache", IN_MACHINE_CACHE)}`);
    expect(r.code, r.stderr).toBe(0);
    expect(bootstrapResult(r.stdout)?.how).toBe("installed-from-cache");
    const log = readFileSync(path.join(hostJ.upper, FIRST_BOOT_LOG.slice(1)), "utf8");
    // apt-get update only warns about a source it cannot reach: the installs are what fail, each named.
    expect(log).toContain("installing nfs-common failed; bootstrap-host.sh installs them (from the SFS cache) or names them");
    expect(log).toContain("installing rclone jq failed; bootstrap-host.sh installs them (from the SFS cache) or names them");
  }, 600_000);

  it("a first-boot install that never finishes: bootstrap --pre-mount gives up naming the lock, its log and the fix", async () => {
    const hostI = machine("host-i");
    const held = `mkdir -p ${path.dirname(FIRST_BOOT_LOCK)} && exec 9>${FIRST_BOOT_LOCK} && flock 9 && `;
    const r = await hostI.run(`${held}COMFYUME_FIRST_BOOT_WAIT_SECONDS=1 ${bootstrapCommand("--pre-mount")} 9>&-`);
    expect(r.code).toBe(1);
    const last = r.stderr.trimEnd().split("\n").pop() ?? "";
    expect(last).toContain(`the first-boot install of the toolchain still holds ${FIRST_BOOT_LOCK} after 1s`);
    expect(last).toContain("Fix: see why apt hangs on the host");
  }, 120_000);
});
