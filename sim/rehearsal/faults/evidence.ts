// Evidence for the fault table, taken from the bytes, never from a listing: each user file is
// "verified in R2" when a manifest of its set names it and the object read back through the S3
// endpoint hashes to its SHA-256, and "on its volume" when the volume's backing storage (the
// scratch image's current ext4 filesystem, mello's disk) holds it with the same hash.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalCloud } from "../../local-cloud";
import { backupSetOf } from "../activity";
import { rcloneS3 } from "../r2-readback";

export interface UserFile {
  host: "worker" | "mello";
  /** Absolute path on its host. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface FileEvidence {
  file: UserFile;
  inR2: boolean;
  onVolume: boolean;
}

const SCRATCH = "/mnt/scratch/";

const sha256File = (file: string) => (fs.existsSync(file) ? createHash("sha256").update(fs.readFileSync(file)).digest("hex") : "");

function rclone(cloud: LocalCloud, args: string[]): string {
  return rcloneS3(cloud, args).toString();
}

/**
 * For each file: does a manifest of its set name it (path and SHA-256), and does the set hold an
 * object whose bytes, read back from the S3 endpoint, hash to it? (Any key: the check does not
 * depend on how the scripts name objects.)
 */
export function verifiedInR2(cloud: LocalCloud, files: UserFile[], workDir: string): Set<UserFile> {
  const bucket = cloud.s3.buckets.userFiles;
  const dir = fs.mkdtempSync(path.join(workDir, "r2-readback-"));
  try {
    // Straight to the S3 endpoint (not through the fault gate): the evidence must not depend on the fault.
    const list = path.join(workDir, `${path.basename(dir)}.list`);
    fs.writeFileSync(list, rclone(cloud, ["lsf", "-R", "--files-only", `r2:${bucket}`]));
    // --ignore-checksum: a corrupted object is evidence to hash here, not a transfer to refuse.
    rclone(cloud, ["copy", "--ignore-checksum", "--files-from", list, "--no-traverse", `r2:${bucket}`, dir]);
    fs.rmSync(list);
    const sets = new Map<string, { named: Set<string>; hashes: Set<string> }>();
    const setOf = (prefix: string) => {
      let s = sets.get(prefix);
      if (s) return s;
      s = { named: new Set(), hashes: new Set() };
      const root = path.join(dir, prefix);
      const all = fs.existsSync(root) ? (fs.readdirSync(root, { recursive: true }) as string[]) : [];
      for (const rel of all) {
        const file = path.join(root, rel);
        if (!fs.statSync(file).isFile()) continue;
        if (rel.startsWith("manifests/")) {
          for (const line of fs.readFileSync(file, "utf8").split("\n")) {
            const [sha, , , name] = line.split("\t");
            if (sha && name && !line.startsWith("#")) s.named.add(`${sha} ${name}`);
          }
        } else s.hashes.add(sha256File(file));
      }
      sets.set(prefix, s);
      return s;
    };
    const ok = new Set<UserFile>();
    for (const f of files) {
      const { prefix, rel } = backupSetOf(f);
      const s = setOf(prefix);
      if (s.named.has(`${f.sha256} ${rel}`) && s.hashes.has(f.sha256)) ok.add(f);
    }
    return ok;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function onVolume(cloud: LocalCloud, scratchVolumeId: string, f: UserFile): boolean {
  if (f.host === "mello") return sha256File(path.join(cloud.mello.root, f.path)) === f.sha256;
  // The scratch's own ext4 (live through the machine that mounts it, else mounted read-only for the call).
  return cloud.readScratch(scratchVolumeId, (dir) => sha256File(path.join(dir, f.path.slice(SCRATCH.length))) === f.sha256) ?? false;
}

export function gatherEvidence(cloud: LocalCloud, scratchVolumeId: string, files: UserFile[], workDir: string): FileEvidence[] {
  const inR2 = verifiedInR2(cloud, files, workDir);
  return files.map((file) => ({ file, inR2: inR2.has(file), onVolume: onVolume(cloud, scratchVolumeId, file) }));
}

/**
 * Objects of the user-files bucket whose bytes do not hash to their content key (truncated by an
 * interrupted upload, or corrupted by a fault), read from the S3 server's storage.
 */
export function badObjects(cloud: LocalCloud): string[] {
  const root = path.join(cloud.s3.dataDir, cloud.s3.buckets.userFiles);
  const bad: string[] = [];
  for (const rel of fs.existsSync(root) ? (fs.readdirSync(root, { recursive: true }) as string[]) : []) {
    const m = /\/objects\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(`/${rel}`);
    if (m && fs.statSync(path.join(root, rel)).isFile() && sha256File(path.join(root, rel)) !== m[1]) bad.push(rel);
  }
  return bad;
}

/** Removes objects from the S3 server behind its back, as an operator would in R2's console. */
export function removeObjects(cloud: LocalCloud, keys: string[]): void {
  for (const key of keys) cloud.s3.removeObject(cloud.s3.buckets.userFiles, key);
}

/** The scripts' own "FAILED in step" lines logged on these hosts since `sinceMs` (newest last). */
export function hostFailures(hostRoots: string[], sinceMs: number): string[] {
  const out: string[] = [];
  for (const root of hostRoots) {
    const dir = path.join(root, "var/log/comfyume");
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const file = path.join(dir, name);
      if (!name.endsWith(".log") || fs.statSync(file).mtimeMs < sinceMs) continue;
      const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.includes("FAILED in step") && !l.includes("(exit "));
      if (lines.length) out.push(lines[lines.length - 1]!.replace(/^\S+ /, ""));
    }
  }
  return out;
}
