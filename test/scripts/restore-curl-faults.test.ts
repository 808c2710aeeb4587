// The restore's curl downloader (_r2_get: large objects stream curl -> one perl for the part MD5s ->
// openssl, issue 13's restore at disk speed) under faults: the connection to R2 cut mid-download
// (the server gone), wrong credentials, and an object altered on the S3 side. In each case nothing
// is installed unverified, the message names the cause and the fix, and a re-run completes.
// (Altered bytes through the same path: restore-speed.test.ts "large objects, hashed while they
// stream in"; a falsified multipart ETag: multipart-etag.test.ts.)
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, r2Secrets, run, sha256 as fileSha256, tmp, useS3, write } from "./helpers";
import { cuttingRelay } from "../support/cutting-relay";

const s3 = useS3("127.0.102.21");
const MODELS = "comfyume-model-vault-backups";
const HOST = "127.0.102.21";
const sha256 = (b: Buffer | string) => (typeof b === "string" ? fileSha256(b) : createHash("sha256").update(b).digest("hex"));

/** Models set of a few files, one of them `big` (streamed: every object counts as large in these tests). */
async function backedUp(): Promise<{ sfs: string; mkey: string; files: Record<string, Buffer> }> {
  const sfs = join(tmp("src"), "mnt/sfs");
  const files: Record<string, Buffer> = {
    "models/a/big.safetensors": randomBytes(12 * 1024 * 1024 + 11),
    "models/a/small.safetensors": randomBytes(70_000),
    "models/b/other.safetensors": randomBytes(3 * 1024 * 1024),
  };
  for (const [rel, bytes] of Object.entries(files)) write(join(sfs, rel), bytes);
  const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models"], {
    env: { COMFYUME_ROOT: tmp("host"), RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi" },
    input: r2Secrets(s3),
    timeoutMs: 120_000,
  });
  expect(b.code, b.stderr).toBe(0);
  return { sfs, mkey: new RegExp(`r2:${MODELS}/(models/manifests/\\S+\\.tsv)`).exec(b.stderr)![1], files };
}

// The two downloaders: every object streamed (_r2_get, one curl each), or every object in the one
// parallel curl run (_r2_get_many, files hashed as they complete).
const PATHS = { stream: "1", batch: String(1 << 30) } as const;
type Path = keyof typeof PATHS;

function seed(dst: string, mkey: string, endpoint: string, secrets: string, path: Path) {
  return run("seed-sfs.sh", ["--r2-endpoint", endpoint, "--only", "models", "--manifest", `models=${mkey}`, "--min-free-mb", "1"], {
    env: { COMFYUME_ROOT: dst, RCLONE_RETRIES: "1", COMFYUME_R2_STREAM_MIN_BYTES: PATHS[path] },
    input: secrets,
    timeoutMs: 120_000,
  });
}

describe.each(Object.keys(PATHS) as Path[])("the restore's curl downloader under faults (%s)", (path) => {
  it("R2 gone mid-download: the restore fails naming the object, R2 unreachable and the fix; nothing unverified is installed; a re-run completes", async () => {
    const { mkey, files } = await backedUp();
    const big = files["models/a/big.safetensors"];
    const relay = await cuttingRelay({ upstream: s3.endpoint, host: HOST, victim: sha256(big), afterBytes: 256 * 1024, then: "server-gone" });
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    let r;
    try {
      r = await seed(dst, mkey, relay.endpoint, r2Secrets(s3), path);
    } finally {
      relay.close();
    }
    expect(relay.cuts(), "the relay never saw the object's GET").toBe(1);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`download of r2:${MODELS}/models/objects/\\S+/${sha256(big)} failed: .*R2 unreachable at .*went away mid-download: check the network and --r2-endpoint, then re-run`));
    expect(r.stderr).toContain("(a/big.safetensors)");
    expect(existsSync(join(dst, "mnt/sfs/models/a/big.safetensors"))).toBe(false);
    // Whatever is in place is exactly the backed-up bytes (nothing unverified under a final name).
    for (const [rel, bytes] of Object.entries(files)) {
      const p = join(dst, "mnt/sfs", rel);
      if (existsSync(p)) expect(sha256(p)).toBe(sha256(bytes));
    }
    // R2 back: the re-run restores everything.
    const again = await seed(dst, mkey, s3.endpoint, r2Secrets(s3), path);
    expect(again.code, again.stderr).toBe(0);
    for (const [rel, bytes] of Object.entries(files)) expect(sha256(join(dst, "mnt/sfs", rel))).toBe(sha256(bytes));
  }, 300_000);

  it("wrong credentials at the download: the object is named with 'access denied' and which keys to check; nothing is staged", async () => {
    const { mkey, files } = await backedUp();
    const big = files["models/a/big.safetensors"];
    const sha = sha256(big);
    const staging = tmp("staging");
    const work = tmp("work");
    writeFileSync(join(work, "fetch.tsv"), `${sha.slice(0, 2)}/${sha}\t${big.length}\n`);
    // The downloader itself (the manifest read, by rclone, would fail first in a whole restore).
    const driver = join(work, "driver.sh");
    writeFileSync(
      driver,
      `set -euo pipefail\nsource ${JSON.stringify(join(REPO, "scripts/lib/common.sh"))}\nread_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY\nR2_ENDPOINT=$1\nr2_setup\n` +
        `COMFYUME_R2_STREAM_MIN_BYTES=${PATHS[path]} r2_fetch_hashed ${MODELS} models "$2" "$3/fetch.tsv" "$3/hashes"\ncat "$3"/hashes.[0-9]* 2>/dev/null || true\n`,
    );
    const r = await run(driver, [s3.endpoint, staging, work], { input: `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=not-the-secret\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(""); // no hash: the caller names the file not restored
    expect(r.stderr).toMatch(/download of r2:\S+ failed: .*error: 403.*access denied: check R2_ACCESS_KEY_ID \/ R2_SECRET_ACCESS_KEY/);
    expect(r.stderr).not.toContain("not-the-secret");
    expect(readdirSync(staging, { recursive: true }).filter((f) => String(f).endsWith(sha))).toEqual([]);
    expect(mkey).toBeTruthy();
  }, 300_000);

  it("an object altered on the S3 side (same size) is refused by its SHA-256; the others restore", async () => {
    const { mkey, files } = await backedUp();
    const sha = sha256(files["models/b/other.safetensors"]);
    s3.corruptObject(MODELS, `models/objects/${sha.slice(0, 2)}/${sha}`);
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const r = await seed(dst, mkey, s3.endpoint, r2Secrets(s3), path);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HASH MISMATCH: .*\(b\/other\.safetensors\) downloaded with sha256 \w+, manifest says/);
    expect(existsSync(join(dst, "mnt/sfs/models/b/other.safetensors"))).toBe(false);
    expect(sha256(join(dst, "mnt/sfs/models/a/big.safetensors"))).toBe(sha256(files["models/a/big.safetensors"]));
  }, 300_000);
});
