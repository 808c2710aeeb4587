// Simulated user activity: filmmakers' inputs and outputs on the worker's scratch volume and their
// user data on mello, then byte-for-byte checks that the next workshop day has all of it: on the
// hosts (the new worker's scratch, mello's disk) and in the backup (R2, read back and hashed).
import { randomBytes } from "node:crypto";
import type { LocalCloud } from "../local-cloud";
import { sshRun, type SshHost } from "./hosts";
import { latestManifest, readObject, sha256, type ManifestEntry } from "./r2-readback";

export interface WorkFile {
  /** "mello": the host holding the users' own files (mello, or the app host with app.host = verda). */
  host: "worker" | "mello";
  /** The user-files set root of a "mello" file: `mello`, or `app` for the app host (components/app-host-backup.ts). */
  setRoot?: string;
  path: string;
  sha256: string;
  bytes: number;
}

/** backup-mello's default data directory on mello (the rehearsal's stacks set no melloHostEnv DATA_DIR). */
export const MELLO_DATA_DIR = "/home/dev/comfyume/data";
const SCRATCH = "/mnt/scratch";

/** Where backup-mello reads mello's user files, from a stack's settings: melloHostEnv DATA_DIR, else its default. */
export function melloDataDir(stackConfig: object): string {
  const env = (stackConfig as Record<string, unknown>)["comfyume:melloHostEnv"] as Record<string, string> | undefined;
  return env?.DATA_DIR ?? MELLO_DATA_DIR;
}

/** A user file's backup set (key prefix in the user-files bucket) and its path inside the set. */
export function backupSetOf(f: WorkFile, melloData = MELLO_DATA_DIR): { prefix: string; rel: string } {
  const base = `${f.host === "worker" ? SCRATCH : melloData}/`;
  const root = f.host === "worker" ? "scratch" : (f.setRoot ?? "mello");
  if (!f.path.startsWith(base)) throw new Error(`${f.host}:${f.path} is outside ${base}`);
  const [dir, ...rest] = f.path.slice(base.length).split("/");
  return { prefix: `${root}/${dir}`, rel: rest.join("/") };
}

// A path on the host, as its shell sees it. On a host whose commands still get COMFYUME_ROOT (the
// host's root seen from this machine), mello's files are under it; on a host with its own root
// filesystem the variable is unset and the path is the host's own.
const onHost = (host: "worker" | "mello", file: string) => (host === "mello" ? `"\${COMFYUME_ROOT:-}"'${file}'` : `'${file}'`);

/** Writes one file per (user, place) with random content and returns what was written. */
export async function simulateUsers(dir: string, keyFile: string, worker: SshHost, mello: SshHost, users = 3, melloData = MELLO_DATA_DIR, setRoot?: string): Promise<WorkFile[]> {
  const files: WorkFile[] = [];
  const put = async (host: "worker" | "mello", target: SshHost, file: string, bytes: number) => {
    const content = randomBytes(bytes);
    await sshRun(dir, keyFile, target, `mkdir -p "$(dirname ${onHost(host, file)})" && base64 -d > ${onHost(host, file)}`, content.toString("base64"));
    files.push({ host, path: file, sha256: sha256(content), bytes, ...(host === "mello" && setRoot ? { setRoot } : {}) });
  };
  for (let u = 1; u <= users; u++) {
    const user = `user${String(u).padStart(3, "0")}`;
    await put("worker", worker, `${SCRATCH}/inputs/${user}/reference.png`, 48 * 1024);
    await put("worker", worker, `${SCRATCH}/outputs/${user}/ComfyUI_0000${u}_.mp4`, 512 * 1024);
    await put("mello", mello, `${melloData}/user_data/${user}/workflow.json`, 4 * 1024);
    await put("mello", mello, `${melloData}/outputs/${user}/final_cut.mp4`, 256 * 1024);
  }
  return files;
}

/** Names every file missing or different on its host (SHA-256 over SSH). */
export async function verifyOnHosts(dir: string, keyFile: string, worker: SshHost, mello: SshHost, files: WorkFile[]): Promise<string[]> {
  const problems: string[] = [];
  for (const host of ["worker", "mello"] as const) {
    const mine = files.filter((f) => f.host === host);
    if (!mine.length) continue;
    const out = await sshRun(dir, keyFile, host === "worker" ? worker : mello, `sha256sum ${mine.map((f) => onHost(host, f.path)).join(" ")} 2>&1 || true`);
    for (const f of mine) {
      // sha256sum may name mello's files with their root in front: match the end of the name.
      const line = out.split("\n").find((l) => l.endsWith(f.path));
      if (!line) problems.push(`${host}:${f.path} missing`);
      else if (!line.startsWith(f.sha256)) problems.push(`${host}:${f.path} differs`);
    }
  }
  return problems;
}

/**
 * Names every file whose backup does not hold it: the newest manifest of its set (read back from the
 * S3 endpoint) must name it with its SHA-256, and the object it names, read back, must hash to it.
 */
export function verifyInR2(cloud: LocalCloud, files: WorkFile[], melloData = MELLO_DATA_DIR): string[] {
  const bucket = cloud.s3.buckets.userFiles;
  const manifests = new Map<string, ManifestEntry[] | undefined>();
  const problems: string[] = [];
  for (const f of files) {
    const { prefix, rel } = backupSetOf(f, melloData);
    if (!manifests.has(prefix)) {
      const m = latestManifest(cloud, { name: prefix, bucket, prefix });
      manifests.set(prefix, m.key ? m.entries : undefined);
    }
    const entries = manifests.get(prefix);
    const entry = entries?.find((e) => e.path === rel);
    const what = `${f.host}:${f.path} in R2`;
    if (!entries) problems.push(`${what}: set ${prefix} has no manifest`);
    else if (!entry) problems.push(`${what}: not in the newest manifest of set ${prefix}`);
    else if (entry.sha256 !== f.sha256) problems.push(`${what}: the newest manifest of set ${prefix} has SHA-256 ${entry.sha256}, not ${f.sha256}`);
    else {
      const key = `${prefix}/${entry.key}`;
      let got: string;
      try {
        got = sha256(readObject(cloud, bucket, key));
      } catch (e) {
        problems.push(`${what}: object ${key} cannot be read back (${(e as Error).message})`);
        continue;
      }
      if (got !== f.sha256) problems.push(`${what}: object ${key} read back hashes to ${got}, not ${f.sha256}`);
    }
  }
  return problems;
}

/** Names every file that is missing or differs on its host or in R2; empty when all match. */
export async function verifyWork(
  cloud: LocalCloud,
  keyFile: string,
  worker: SshHost,
  mello: SshHost,
  files: WorkFile[],
  melloData = MELLO_DATA_DIR,
): Promise<string[]> {
  return [...(await verifyOnHosts(cloud.dir, keyFile, worker, mello, files)), ...verifyInR2(cloud, files, melloData)];
}
