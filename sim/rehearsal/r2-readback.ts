// What the backups really hold, read back from the S3 endpoint standing in for R2 (directly, never
// through a fault gate, never trusting a listing alone): each set's newest manifest, its entries,
// and objects by their manifest key, hashed here.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import type { LocalCloud } from "../local-cloud";

/** One backup set: a key prefix in a bucket, with dated manifests under `<prefix>/manifests/`. */
export interface BackupSet {
  /** The scripts' name for it (its prefix): models, cache, worker, scratch/inputs, mello/outputs, ... */
  name: string;
  bucket: string;
  prefix: string;
}

export interface ManifestEntry {
  sha256: string;
  size: number;
  /** Path relative to the set's source. */
  path: string;
  /** Object key relative to the prefix (v2 manifests), e.g. objects/ab/<sha256>. */
  key: string;
}

export interface SetManifest {
  set: BackupSet;
  /** Key of the newest manifest; undefined when the set has none. */
  key?: string;
  entries: ManifestEntry[];
  bytes: number;
}

/** Every set the nightly destroy backs up: the SFS (backup-to-r2), the scratch and mello (backup-mello). */
export function nightlySets(cloud: LocalCloud, melloDirs = ["user_data", "outputs", "inputs"]): BackupSet[] {
  const b = cloud.s3.buckets;
  return [
    { name: "models", bucket: b.models, prefix: "models" },
    { name: "cache", bucket: b.cache, prefix: "cache" },
    { name: "worker", bucket: b.workerContainer, prefix: "worker" },
    ...["inputs", "outputs"].map((d) => ({ name: `scratch/${d}`, bucket: b.userFiles, prefix: `scratch/${d}` })),
    ...melloDirs.map((d) => ({ name: `mello/${d}`, bucket: b.userFiles, prefix: `mello/${d}` })),
  ];
}

// rclone refuses AWS_CA_BUNDLE with its own transport (the scripts turn it into --ca-cert); S3 here is plain HTTP.
function rcloneEnv(cloud: LocalCloud): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG: "/dev/null",
    RCLONE_CONFIG_R2_TYPE: "s3",
    RCLONE_CONFIG_R2_PROVIDER: "Cloudflare", // as the host scripts: no ACL header (the stand-in refuses one on its buckets)
    RCLONE_CONFIG_R2_REGION: "auto", // as R2 clients sign (the stand-in checks the region)
    RCLONE_CONFIG_R2_ENDPOINT: cloud.s3.endpoint,
    RCLONE_CONFIG_R2_ACCESS_KEY_ID: cloud.s3.accessKeyId,
    RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: cloud.s3.secretAccessKey,
  };
  delete env.AWS_CA_BUNDLE;
  return env;
}

/** Runs rclone against the S3 endpoint; its stdout, as bytes. */
export function rcloneS3(cloud: LocalCloud, args: string[]): Buffer {
  const r = spawnSync("rclone", ["--retries", "1", "--low-level-retries", "2", "--contimeout", "5s", "--timeout", "30s", ...args], {
    timeout: 120_000,
    maxBuffer: 1 << 30,
    env: rcloneEnv(cloud),
  });
  if (r.status !== 0) throw new Error(`rclone ${args[0]} from the S3 endpoint failed: ${r.stderr.toString().trim().split("\n").slice(-2).join(" ")}`);
  return r.stdout;
}

/** An object's bytes, read back from the S3 endpoint. */
export function readObject(cloud: LocalCloud, bucket: string, key: string): Buffer {
  return rcloneS3(cloud, ["cat", `r2:${bucket}/${key}`]);
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export function parseManifest(text: string): ManifestEntry[] {
  return text
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => {
      const [sha, , size, file, key] = l.split("\t");
      return { sha256: sha ?? "", size: Number(size), path: file ?? "", key: key ?? "" };
    });
}

/** Key of the set's newest manifest (dated names sort by time, as the scripts pick it), if any. */
export function latestManifestKey(cloud: LocalCloud, set: BackupSet): string | undefined {
  const names = rcloneS3(cloud, ["lsf", "--files-only", `r2:${set.bucket}/${set.prefix}/manifests`])
    .toString()
    .split("\n")
    .filter((n) => n.endsWith(".tsv"))
    .sort();
  const newest = names[names.length - 1];
  return newest ? `${set.prefix}/manifests/${newest}` : undefined;
}

/** The set's newest manifest, read back and parsed. */
export function latestManifest(cloud: LocalCloud, set: BackupSet): SetManifest {
  const key = latestManifestKey(cloud, set);
  if (!key) return { set, entries: [], bytes: 0 };
  const entries = parseManifest(readObject(cloud, set.bucket, key).toString());
  return { set, key, entries, bytes: entries.reduce((n, e) => n + e.size, 0) };
}

/**
 * Why these manifests do not prove a backup, one line per set, each naming the set: none at all, an
 * empty one (a source `find` never entered "verifies" as zero files), or (given `before`, the newest
 * keys before the backup) none written by this backup.
 */
export function manifestProblems(now: SetManifest[], before?: Map<string, string | undefined>): string[] {
  const problems: string[] = [];
  for (const m of now) {
    const where = `r2:${m.set.bucket}/${m.set.prefix}/manifests/`;
    if (!m.key) problems.push(`set ${m.set.name}: no manifest under ${where}`);
    else if (m.entries.length === 0) problems.push(`set ${m.set.name}: newest manifest ${m.key} is empty (0 entries): its source was not read`);
    else if (before && before.get(m.set.name) === m.key) problems.push(`set ${m.set.name}: no new manifest under ${where} (newest is still ${m.key})`);
  }
  return problems;
}

/** The report's table: one row per set, entries and bytes of its newest manifest. */
export function manifestTable(rows: SetManifest[]): string {
  const header = ["set", "bucket", "entries", "bytes", "newest manifest"];
  const body = rows.map((m) => [m.set.name, m.set.bucket, String(m.entries.length), String(m.bytes), m.key?.slice(m.set.prefix.length + 1) ?? "— (none)"]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const right = new Set([2, 3]);
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
