// Volumes as local storage, kept in step with the simulator's view:
//   SFS (NVMe_Shared)  <base>/<id>/sfs/       its own tmpfs, mounted under the NFS target's name (so
//                                             a machine's bind mount of it reads as that NFS mount in
//                                             /proc/mounts); "exported" to the machines it is attached to
//   block (NVMe)       <base>/<id>/disk.img   a sparse disk image, attached to a loop device while
//                                             Verda reports it attached: each machine it is attached
//                                             to gets a real block device /dev/vdX (the loop's numbers)
//                                             and /dev/disk/by-id/virtio-<last 12 hex of the id>
// <base> is a shared mount, so SFS file systems mounted later appear in running machines (their
// init binds it at /run/comfyume-sim/volumes with slave propagation). Both kinds outlive instances;
// they go only when the volume is permanently deleted. OS volumes have no store (the machine's
// overlay is its OS disk).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { VolumeView } from "../simulator";
import { unmount, type HostDirs } from "./machine";

type AnyVolume = Pick<VolumeView, "id" | "type" | "size" | "status" | "target" | "is_os_volume" | "instances"> & { is_permanently_deleted?: boolean };

function must(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`local cloud: ${what} failed: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout.trim();
}

/** Fails at start, with the fix, when this computer cannot give the machines loop block devices. */
export function checkLoopDevices(): void {
  if (!existsSync("/dev/loop-control")) {
    throw new Error("local cloud: no /dev/loop-control, so scratch volumes cannot be block devices. Load the loop module (modprobe loop) or run in a VM/container with loop devices (docker run --privileged)");
  }
}

const shortId = (id: string) => id.replace(/-/g, "").slice(-12);

export class VolumeStore {
  private readonly loops = new Map<string, { dev: string; major: number; minor: number }>();
  /** SFS volumes whose tmpfs is mounted, with the size option they were mounted with. */
  private readonly sfsMounted = new Map<string, string>();

  constructor(
    private readonly baseDir: string,
    private readonly imageMiB: number,
  ) {
    must(["mount", "--bind", baseDir, baseDir], "binding the volumes directory");
    must(["mount", "--make-shared", baseDir], "sharing the volumes directory");
  }

  get dir(): string {
    return this.baseDir;
  }

  sfsDir(volumeId: string): string {
    return path.join(this.baseDir, volumeId, "sfs");
  }

  scratchImage(volumeId: string): string {
    return path.join(this.baseDir, volumeId, "disk.img");
  }

  /** Creates storage for new volumes, attaches/detaches loop devices, removes permanently deleted ones. */
  sync(volumes: AnyVolume[]): void {
    for (const v of volumes) {
      if (v.is_os_volume) continue;
      if (v.is_permanently_deleted) {
        this.remove(v.id);
        continue;
      }
      if (v.status === "ordered") continue;
      if (v.type === "NVMe_Shared") this.ensureSfs(v);
      else {
        if (!existsSync(this.scratchImage(v.id))) this.createImage(v);
        const attached = v.status === "attached" && v.instances.length > 0;
        if (attached && !this.loops.has(v.id)) this.attachLoop(v.id);
        if (!attached && this.loops.has(v.id)) this.detachLoop(v.id);
      }
    }
  }

  private ensureSfs(v: AnyVolume): void {
    if (this.sfsMounted.has(v.id)) return;
    const dir = this.sfsDir(v.id);
    mkdirSync(dir, { recursive: true });
    const source = v.target ?? `sfs-${v.id}`;
    const size = `${Math.max(1, v.size)}g`;
    must(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0755`, source, dir], `the file system of SFS ${v.id}`);
    this.sfsMounted.set(v.id, size);
  }

  /**
   * Fault seam: the SFS is full (its file system shrunk to what it holds plus 16 MiB, the rest taken by
   * `.fault-filler`), as every machine mounting it sees at once; off: the filler goes, the size comes back.
   */
  setSfsFull(volumeId: string, full: boolean): void {
    const size = this.sfsMounted.get(volumeId);
    if (!size) throw new Error(`local cloud: no SFS ${volumeId}`);
    const dir = this.sfsDir(volumeId);
    const filler = path.join(dir, ".fault-filler");
    if (!full) {
      rmSync(filler, { force: true });
      must(["mount", "-o", `remount,size=${size}`, dir], `giving SFS ${volumeId} its space back`);
      return;
    }
    const used = Number(must(["du", "-sb", dir], `measuring SFS ${volumeId}`).split(/\s/)[0]);
    must(["mount", "-o", `remount,size=${Math.ceil(used / 1048576) + 16}m`, dir], `shrinking SFS ${volumeId}`);
    spawnSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=64K"]); // stops at ENOSPC
  }

  private createImage(v: AnyVolume): void {
    mkdirSync(path.dirname(this.scratchImage(v.id)), { recursive: true });
    const mib = Math.min(v.size * 1024, this.imageMiB);
    // Sparse and blank, like a new cloud volume: blkid finds nothing, so prepare-scratch formats it.
    must(["truncate", "-s", `${mib}M`, this.scratchImage(v.id)], `the disk image of volume ${v.id}`);
  }

  private attachLoop(id: string): void {
    const dev = must(["losetup", "--find", "--show", this.scratchImage(id)], `a loop device for volume ${id} (are loop devices free? losetup -l)`);
    const rdev = statSync(dev).rdev;
    this.loops.set(id, { dev, major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) });
  }

  private detachLoop(id: string): void {
    const loop = this.loops.get(id);
    if (!loop) return;
    // Still mounted on a machine: the kernel frees it when that mount goes (autoclear).
    spawnSync("losetup", ["-d", loop.dev]);
    this.loops.delete(id);
  }

  private remove(id: string): void {
    this.detachLoop(id);
    if (this.sfsMounted.delete(id)) unmount(this.sfsDir(id));
    rmSync(path.join(this.baseDir, id), { recursive: true, force: true });
  }

  /** Keeps a machine's export table and /dev entries in step with the volumes attached to `instanceId`. */
  attachToHost(instanceId: string, host: HostDirs, volumes: AnyVolume[]): void {
    const mine = volumes.filter((v) => !v.is_os_volume && !v.is_permanently_deleted && v.status !== "deleted" && v.instances.some((i) => i.id === instanceId));
    const exports: string[] = [];
    const devices = new Map<string, { volumeId: string; major: number; minor: number }>();
    for (const v of mine) {
      if (v.type === "NVMe_Shared" && v.target && this.sfsMounted.has(v.id)) exports.push(`${v.target} ${v.id}`);
      const loop = this.loops.get(v.id);
      if (v.type !== "NVMe_Shared" && v.target && v.status === "attached" && loop) devices.set(v.target, { volumeId: v.id, ...loop });
    }
    writeIfChanged(path.join(host.state, "exports"), exports.map((l) => `${l}\n`).join(""));
    syncDevices(host, devices);
  }

  /**
   * Calls `fn` with a read-only view of the scratch volume's file system, mounted here for the call
   * only (its loop device when attached, else the image), for a volume no machine has mounted;
   * undefined when it holds no file system yet.
   */
  readScratch<T>(volumeId: string, fn: (dir: string) => T): T | undefined {
    const image = this.scratchImage(volumeId);
    if (!existsSync(image)) return undefined;
    const probe = spawnSync("blkid", ["-p", "-o", "value", "-s", "TYPE", image], { encoding: "utf8" });
    if (probe.status !== 0 || !probe.stdout.trim()) return undefined;
    const view = path.join(this.baseDir, volumeId, `view-${process.pid}-${Date.now()}`);
    mkdirSync(view);
    const loop = this.loops.get(volumeId);
    const argv = loop ? ["mount", "-o", "ro", loop.dev, view] : ["mount", "-o", "ro,loop,noload", image, view];
    try {
      must(argv, `a read-only view of scratch volume ${volumeId}`);
      try {
        return fn(view);
      } finally {
        unmount(view);
      }
    } finally {
      // rmdir, never a recursive delete: if the view were still mounted it would fail, not delete files.
      spawnSync("rmdir", [view]);
    }
  }

  /** Removes a machine's volume devices (the machine is gone). */
  detachHost(host: HostDirs): void {
    syncDevices(host, new Map());
  }

  /** Detaches every loop device and unmounts every SFS file system. */
  close(): void {
    for (const id of [...this.loops.keys()]) this.detachLoop(id);
    for (const id of [...this.sfsMounted.keys()]) unmount(this.sfsDir(id));
    this.sfsMounted.clear();
    unmount(this.baseDir);
  }
}

function writeIfChanged(file: string, text: string): void {
  let current: string | undefined;
  try {
    current = readFileSync(file, "utf8");
  } catch {
    current = undefined;
  }
  if (current !== text) writeFileSync(file, text);
}

/** Makes <dev>/vdX nodes and by-id links exactly `want`; the device table tells the blkid stand-in which volume is which. */
function syncDevices(host: HostDirs, want: Map<string, { volumeId: string; major: number; minor: number }>): void {
  const table = [...want].map(([name, d]) => `/dev/${name} ${d.volumeId} ${d.major}:${d.minor}\n`).join("");
  const tableFile = path.join(host.state, "devices");
  let current = "";
  try {
    current = readFileSync(tableFile, "utf8");
  } catch {
    current = "";
  }
  if (current === table) return;
  const byId = path.join(host.dev, "disk/by-id");
  for (const line of current.split("\n").filter(Boolean)) {
    const [devPath = "", volumeId = ""] = line.split(" ");
    rmSync(path.join(host.dev, path.basename(devPath)), { force: true });
    rmSync(path.join(byId, `virtio-${shortId(volumeId)}`), { force: true });
  }
  mkdirSync(byId, { recursive: true });
  for (const [name, d] of want) {
    must(["mknod", "-m", "660", path.join(host.dev, name), "b", String(d.major), String(d.minor)], `/dev/${name} for volume ${d.volumeId}`);
    const link = path.join(byId, `virtio-${shortId(d.volumeId)}`);
    if (existsSync(link)) unlinkSync(link);
    // As on Verda: /dev/disk/by-id/virtio-<last 12 hex digits of the volume id> (verda-api.md §10).
    symlinkSync(`../../${name}`, link);
  }
  for (const e of readdirSync(byId)) if (![...want.values()].some((d) => e === `virtio-${shortId(d.volumeId)}`)) rmSync(path.join(byId, e), { force: true });
  writeFileSync(tableFile, table);
}
