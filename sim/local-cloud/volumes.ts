// Volumes as local storage, kept in step with the simulator's view:
//   SFS (NVMe_Shared)  <base>/volumes/<id>/sfs/       a shared directory, "NFS-exported" to the
//                                                     instances it is attached to
//   block (NVMe)       <base>/volumes/<id>/disk.img   a sparse disk image (real blkid/mkfs.ext4);
//                                                     its files live in disk.img.fs/<ext4 UUID>/
// Both outlive instances; they go only when the volume is permanently deleted. OS volumes have no
// backing store (each instance's root directory is its OS disk).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import * as path from "node:path";
import type { VolumeView } from "../simulator";
import type { HostDirs } from "./host-env";

type AnyVolume = Pick<VolumeView, "id" | "type" | "size" | "status" | "target" | "is_os_volume" | "instances"> & { is_permanently_deleted?: boolean };

export class VolumeStore {
  constructor(
    private readonly baseDir: string,
    private readonly imageMiB: number,
  ) {}

  sfsDir(volumeId: string): string {
    return path.join(this.baseDir, volumeId, "sfs");
  }

  scratchImage(volumeId: string): string {
    return path.join(this.baseDir, volumeId, "disk.img");
  }

  /** Creates backing storage for new volumes and removes it for permanently deleted ones. */
  sync(volumes: AnyVolume[]): void {
    for (const v of volumes) {
      if (v.is_os_volume) continue;
      if (v.is_permanently_deleted) {
        rmSync(path.join(this.baseDir, v.id), { recursive: true, force: true });
        continue;
      }
      if (v.status === "ordered") continue;
      if (v.type === "NVMe_Shared") mkdirSync(this.sfsDir(v.id), { recursive: true });
      else if (!existsSync(this.scratchImage(v.id))) this.createImage(v);
    }
  }

  private createImage(v: AnyVolume): void {
    mkdirSync(path.dirname(this.scratchImage(v.id)), { recursive: true });
    const mib = Math.min(v.size * 1024, this.imageMiB);
    // Sparse and blank, like a new cloud volume: blkid finds nothing, so prepare-scratch formats it.
    const r = spawnSync("truncate", ["-s", `${mib}M`, this.scratchImage(v.id)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cannot create the disk image of volume ${v.id}: ${r.stderr}`);
  }

  /** Points the host's NFS exports and /dev entries at the volumes attached to `instanceId`. */
  attachToHost(instanceId: string, host: HostDirs, volumes: AnyVolume[]): void {
    const mine = volumes.filter((v) => !v.is_os_volume && !v.is_permanently_deleted && v.status !== "deleted" && v.instances.some((i) => i.id === instanceId));
    const exports = new Map<string, string>();
    const devices = new Map<string, string>();
    for (const v of mine) {
      if (v.type === "NVMe_Shared" && v.target && existsSync(this.sfsDir(v.id))) {
        const [nfsHost, pseudo = ""] = v.target.split(/:\/?/, 2);
        exports.set(path.join(nfsHost!, pseudo), this.sfsDir(v.id));
      } else if (v.type !== "NVMe_Shared" && v.target && v.status === "attached" && existsSync(this.scratchImage(v.id))) {
        devices.set(v.target, this.scratchImage(v.id));
        // As on Verda: /dev/disk/by-id/virtio-<last 12 hex digits of the volume id>.
        devices.set(`disk/by-id/virtio-${v.id.replace(/-/g, "").slice(-12)}`, this.scratchImage(v.id));
      }
    }
    syncLinks(host.nfsExports, exports, 2);
    syncLinks(path.join(host.root, "dev"), devices, 3);
  }
}

/** Makes `dir` hold exactly the symlinks in `want` (relative path -> target), at most `depth` levels deep. */
function syncLinks(dir: string, want: Map<string, string>, depth: number): void {
  for (const [rel, target] of want) {
    const link = path.join(dir, rel);
    mkdirSync(path.dirname(link), { recursive: true });
    let current: string | null = null;
    try {
      current = readlinkSync(link);
    } catch {
      current = null;
    }
    if (current === target) continue;
    if (current !== null) unlinkSync(link);
    symlinkSync(target, link);
  }
  for (const rel of listLinks(dir, depth)) if (!want.has(rel)) unlinkSync(path.join(dir, rel));
}

function listLinks(dir: string, depth: number, prefix = ""): string[] {
  if (depth === 0 || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isSymbolicLink()) out.push(rel);
    else if (e.isDirectory()) out.push(...listLinks(path.join(dir, e.name), depth - 1, rel));
  }
  return out;
}
