// Each backup set's last verified backup, read from R2 as the host scripts write it
// (docs/host-scripts.md, "R2 layout"): `<prefix>/manifests/<YYYY-MM-DDTHHMMSSZ>.tsv`, written only
// after every object it names was verified, so the newest manifest IS the last verified backup.
// Access follows the scripts' r2_rclone: rclone's S3 backend configured by environment, the keys
// handed to each rclone process alone.
import { spawn } from "node:child_process";
import { failure, pool, probe, type Probe } from "./probe";

export interface R2Access {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** bucketNames output of the idle stack: models, cache, workerContainer, userFiles. */
  buckets: Record<string, string>;
}

export interface BackupSetStatus {
  set: string;
  bucket: string;
  prefix: string;
  /** Undefined when the set has no verified backup yet. */
  last?: { key: string; at: string; ageHours: number; files: number; bytes: number; where: string };
}

export type Rclone = (args: string[]) => Promise<string>;

const FAIL_FAST = ["--contimeout", "5s", "--timeout", "15s", "--retries", "1", "--low-level-retries", "1"];

/** rclone with the `r2:` remote; rejects with rclone's last line (which never holds the keys). */
export function rcloneFor(r2: R2Access, timeoutMs = 30_000): Rclone {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RCLONE_CONFIG: "/dev/null",
    RCLONE_CONFIG_R2_TYPE: "s3",
    RCLONE_CONFIG_R2_PROVIDER: "Cloudflare",
    RCLONE_CONFIG_R2_REGION: "auto",
    RCLONE_CONFIG_R2_ENDPOINT: r2.endpoint,
    RCLONE_CONFIG_R2_NO_CHECK_BUCKET: "true",
    RCLONE_CONFIG_R2_ACCESS_KEY_ID: r2.accessKeyId,
    RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: r2.secretAccessKey,
  };
  // rclone refuses AWS_CA_BUNDLE with its own transport; the scripts pass it as --ca-cert too.
  const ca = process.env.AWS_CA_BUNDLE ? ["--ca-cert", process.env.AWS_CA_BUNDLE] : [];
  return (args) =>
    new Promise((resolve, reject) => {
      const child = spawn("rclone", [...args, ...FAIL_FAST, ...ca], { env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(failure(`rclone: ${e.message}`, "install rclone (npm run setup installs it)"));
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code === 0) return resolve(stdout);
        const last = stderr.trim().split("\n").filter(Boolean).pop() ?? `exit ${code}`;
        // The last line names the cause; the request's query string adds nothing for a person.
        const cause = last.replace(/^.*?(ERROR|NOTICE) *: */, "").replace(/caused by: /g, "").replace(/\?[^"\s]*/g, "");
        reject(new Error(`rclone ${args[0]} ${args.find((a) => a.startsWith("r2:")) ?? ""}: ${cause}${code === null ? " (timed out)" : ""}`));
      });
    });
}

const MANIFEST_NAME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d)(\d\d)(\d\d)Z\.tsv$/;

/** The time a dated manifest name stands for, or undefined for any other name. */
export function manifestTime(name: string): Date | undefined {
  const m = MANIFEST_NAME.exec(name);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

/** Files and bytes of a manifest (v1 or v2); throws when it is not one. */
export function manifestTotals(text: string): { files: number; bytes: number } {
  if (!/^# comfyume-manifest v\d/.test(text)) throw new Error("not a comfyume manifest (no header)");
  let files = 0;
  let bytes = 0;
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const size = Number(line.split("\t")[2]);
    if (!Number.isFinite(size)) throw new Error(`damaged manifest line ${files + 1}`);
    files++;
    bytes += size;
  }
  return { files, bytes };
}

/** Dated manifest names per set prefix in one bucket: one recursive listing (no per-directory calls). */
export async function listManifests(bucket: string, rclone: Rclone): Promise<Map<string, string[]>> {
  const listing = await rclone(["lsf", "-R", "--fast-list", "--files-only", "--include", "**/manifests/*.tsv", `r2:${bucket}`]);
  const sets = new Map<string, string[]>();
  for (const line of listing.split("\n").map((l) => l.trim())) {
    const m = /^(.+)\/manifests\/([^/]+)$/.exec(line);
    if (!m || !manifestTime(m[2]!)) continue;
    sets.set(m[1]!, [...(sets.get(m[1]!) ?? []), m[2]!]);
  }
  return sets;
}

/** The SFS sets (always listed, "none yet" before their first night), then every set found in the user-files bucket (scratch/*, mello/*). */
export async function discoverSets(r2: R2Access, rclone: Rclone): Promise<Array<{ set: string; bucket: string; prefix: string; names: string[] }>> {
  const b = r2.buckets;
  const fixed = [
    { set: "models", bucket: b.models, prefix: "models" },
    { set: "cache", bucket: b.cache, prefix: "cache" },
    { set: "worker", bucket: b.workerContainer, prefix: "worker" },
  ].filter((s) => s.bucket);
  const buckets = [...new Set([...fixed.map((s) => s.bucket!), ...(b.userFiles ? [b.userFiles] : [])])];
  const listed = new Map(await Promise.all(buckets.map(async (bucket) => [bucket, await listManifests(bucket, rclone)] as const)));
  const sets = fixed.map((s) => ({ ...s, bucket: s.bucket!, names: listed.get(s.bucket!)?.get(s.prefix) ?? [] }));
  if (b.userFiles) {
    for (const [prefix, names] of [...listed.get(b.userFiles)!].sort(([a], [c]) => a.localeCompare(c))) {
      if (!sets.some((s) => s.bucket === b.userFiles && s.prefix === prefix)) sets.push({ set: prefix, bucket: b.userFiles, prefix, names });
    }
  }
  return sets;
}

/** A set's newest dated manifest, read and totalled. */
export async function setStatus(s: { set: string; bucket: string; prefix: string; names: string[] }, rclone: Rclone, now: Date): Promise<BackupSetStatus> {
  const out = { set: s.set, bucket: s.bucket, prefix: s.prefix };
  const newest = [...s.names].sort().pop();
  if (!newest) return out;
  const key = `${s.prefix}/manifests/${newest}`;
  const totals = manifestTotals(await rclone(["cat", `r2:${s.bucket}/${key}`]));
  const at = manifestTime(newest)!;
  return { ...out, last: { key, at: at.toISOString(), ageHours: (now.getTime() - at.getTime()) / 3_600_000, ...totals, where: `r2:${s.bucket}/${key}` } };
}

/** Every set's last verified backup; a set that cannot be read is unknown on its own. */
export async function backupStatus(r2: R2Access, now: Date, rclone: Rclone = rcloneFor(r2)): Promise<Array<{ set: string; status: Probe<BackupSetStatus> }>> {
  const sets = await discoverSets(r2, rclone);
  return pool(sets, 6, async (s) => ({ set: s.set, status: await probe(`check the R2 endpoint and the idle stack's R2 keys, then rclone cat r2:${s.bucket}/${s.prefix}/manifests/<newest>`, () => setStatus(s, rclone, now)) }));
}
