// A multipart object's ETag is md5(the parts' binary MD5s)-<parts>: no MD5 of the whole object,
// so the listing alone cannot check it. Where the backup's verification or the restore reads a
// multipart object, the ETag is computed locally over the bytes read (from the part size) and
// compared with R2's, in addition to the SHA-256 against the manifest (which stays the proof): an
// object R2 reports with another ETag than its bytes give is not trusted, and the error names it.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, run, tmp, useS3, write } from "./helpers";

const s3 = useS3("127.0.102.11");
const USERS = "comfyume-user-files-backups";
const MODELS = "comfyume-model-vault-backups";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const objectKey = (sha: string) => `objects/${sha.slice(0, 2)}/${sha}`;
const uniquePrefix = (what: string) => `t-${what}-${randomBytes(4).toString("hex")}`;

/** Multipart from 5 MiB on (rclone's own settings, read from its environment), as R2 sees a model file. */
function env(root: string, extra: Record<string, string> = {}): Record<string, string> {
  return { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi", ...extra };
}

/** The ETag the S3 server stored for an object (versitygw keeps it in the user.etag xattr). */
function storedEtag(file: string): string {
  return execFileSync("getfattr", ["--only-values", "-n", "user.etag", "--absolute-names", file], { encoding: "utf8" });
}

/** The server now reports another multipart ETag (same part count) for the object: its bytes stay. */
function falsifyEtag(file: string): string {
  const etag = storedEtag(file);
  const parts = /-(\d+)/.exec(etag)?.[1];
  expect(parts, `not a multipart ETag: ${etag}`).toBeDefined();
  const other = `${createHash("md5").update(randomBytes(16)).digest("hex")}-${parts}`;
  execFileSync("setfattr", ["-n", "user.etag", "-v", etag.startsWith('"') ? `"${other}"` : other, file]);
  return other;
}

describe("multipart ETags computed locally and compared with R2's", () => {
  it("verification fails naming the multipart object whose ETag in R2 is not the one its bytes give (bytes intact)", async () => {
    const root = tmp("etag-verify");
    const data = join(root, "data");
    const video = randomBytes(12 * 1024 * 1024 + 77);
    write(join(data, "outputs/user001/video.mp4"), video);
    write(join(data, "outputs/user001/still.png"), randomBytes(20_000));
    const prefix = uniquePrefix("etag");
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    const night = await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(night.code, night.stderr).toBe(0);
    const key = `${prefix}/outputs/${objectKey(sha256(video))}`;
    // The good object passes the new check (its ETag is what the bytes give with rclone's 5 MiB parts).
    const good = await run("backup-mello.sh", [...args, "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toContain(`multipart ETag of r2:${USERS}/${key} verified`);

    const other = falsifyEtag(s3.objectFile(USERS, key));
    const bad = await run("backup-mello.sh", [...args, "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(bad.code, bad.stderr).not.toBe(0);
    expect(bad.stderr).toContain(`ETAG MISMATCH: r2:${USERS}/${key}`);
    expect(bad.stderr).toContain(`R2 reports ${other}`);
    expect(bad.stderr).toMatch(/Run a backup \(without --verify-only\): it uploads fresh copies under new keys/);
  });

  it("the restore installs a multipart object whose bytes match the manifest even when R2's ETag record is off (the SHA-256 is its proof), and refuses bytes that do not", async () => {
    const root = tmp("etag-restore");
    const sfs = join(root, "sfs");
    const model = randomBytes(11 * 1024 * 1024 + 5);
    write(join(sfs, "models/checkpoints/ltx.safetensors"), model);
    write(join(sfs, "models/loras/small.safetensors"), randomBytes(3000));
    const backup = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--hourly-wait", "5"], { env: env(root), input: r2Secrets(s3) });
    expect(backup.code, backup.stderr).toBe(0);
    const key = `models/${objectKey(sha256(model))}`;
    const restoreArgs = (dest: string) => (mkdirSync(dest, { recursive: true }), ["--r2-endpoint", s3.endpoint, "--sfs", dest, "--only", "models", "--min-free-mb", "1"]);
    // Streamed from 1 MiB on here; the default streams from 200 MiB (the backup's multipart cutoff).
    const restoreEnv = env(root, { COMFYUME_R2_STREAM_MIN_BYTES: "1048576" });

    // R2's record of the object is falsified, its bytes intact: the restore proves the bytes by their
    // SHA-256 against the manifest and installs them (refusing them would fail a morning for metadata).
    falsifyEtag(s3.objectFile(MODELS, key));
    const dest = join(root, "restored");
    const restored = await run("seed-sfs.sh", restoreArgs(dest), { env: restoreEnv, input: r2Secrets(s3) });
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha256(readFileSync(join(dest, "models/checkpoints/ltx.safetensors")))).toBe(sha256(model));
    expect(restored.stderr).not.toContain("ETAG MISMATCH");
    // The nightly read-back still catches the record (the backup's verification keeps the ETag compare).
    const verify = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--hourly-wait", "5", "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(verify.code, verify.stderr).not.toBe(0);
    expect(verify.stderr).toContain(`ETAG MISMATCH: r2:${MODELS}/${key}`);

    // Bytes altered in R2: the SHA-256 refuses them and nothing is installed.
    const file = s3.objectFile(MODELS, key);
    const bytes = readFileSync(file);
    bytes[1000] ^= 0xff;
    writeFileSync(file, bytes);
    const badDest = join(root, "bad");
    const bad = await run("seed-sfs.sh", restoreArgs(badDest), { env: restoreEnv, input: r2Secrets(s3) });
    expect(bad.code, bad.stderr).not.toBe(0);
    expect(bad.stderr).toContain("HASH MISMATCH");
    expect(existsSync(join(badDest, "models/checkpoints/ltx.safetensors"))).toBe(false);
    expect(existsSync(join(badDest, "models/loras/small.safetensors"))).toBe(true);
  });
  it("a server that gives no part size: the part size is inferred from the part count, and a falsified ETag is still refused", async () => {
    const root = tmp("etag-inferred");
    // curl without ?partNumber=1: the server answers a plain HEAD (as a store without part requests).
    const real = spawnSync("bash", ["-c", "command -v curl"], { encoding: "utf8" }).stdout.trim();
    write(join(root, "bin/curl"), `#!/usr/bin/env bash\nargs=()\nfor a in "$@"; do args+=("\${a/\\?partNumber=1/}"); done\nexec '${real}' "\${args[@]}"\n`, 0o755);
    const data = join(root, "data");
    const video = randomBytes(11 * 1024 * 1024 + 3);
    write(join(data, "outputs/user002/clip.mp4"), video);
    const prefix = uniquePrefix("inferred");
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    const shimmed = env(root, { PATH: `${join(root, "bin")}:${process.env.PATH}` });
    const night = await run("backup-mello.sh", args, { env: shimmed, input: r2Secrets(s3) });
    expect(night.code, night.stderr).toBe(0);
    const key = `${prefix}/outputs/${objectKey(sha256(video))}`;
    expect(night.stderr).toContain(`multipart ETag of r2:${USERS}/${key} verified`);
    expect(night.stderr).toMatch(/part size 5242880 \(inferred from the part count\)/);
    falsifyEtag(s3.objectFile(USERS, key));
    const bad = await run("backup-mello.sh", [...args, "--verify-only"], { env: shimmed, input: r2Secrets(s3) });
    expect(bad.code, bad.stderr).not.toBe(0);
    expect(bad.stderr).toContain(`ETAG MISMATCH: r2:${USERS}/${key}`);
    expect(bad.stderr).toContain("set COMFYUME_R2_PART_SIZE=<bytes> if the object was uploaded with another");
  });
});
