// The backup engine under faults, against its own real S3 endpoint (s3rver) on loopback with real
// rclone: R2 altering bytes after an upload (its listing still reporting the right size and MD5),
// healing on the next run, sets that come out empty or shrunk, and R2 going away mid-upload.
// Faults are injected from the test side only: a wrapper around the real rclone (RCLONE_CMD)
// that tampers with s3rver's storage directory, or points one rclone call at a dead port.
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type S3, cleanupTmp, r2Secrets, rclone, run, startS3, tmp, write } from "./helpers";

let s3: S3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  cleanupTmp();
  await s3?.stop();
});

const USERS = "comfyume-user-files-backups";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const objectKey = (sha: string) => `objects/${sha.slice(0, 2)}/${sha}`;
const uniquePrefix = (what: string) => `t-${what}-${randomBytes(4).toString("hex")}`;

function env(root: string, extra: Record<string, string> = {}): Record<string, string> {
  return { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", ...extra };
}

/**
 * A wrapper around the real rclone that, right after the first successful upload of objects,
 * overwrites the first bytes of one stored object in s3rver's storage directory: same size, and
 * s3rver keeps reporting the MD5 it stored at upload (R2 "lying" in its listing).
 */
function corruptingRclone(dir: string, bucket: string, key: string): string {
  const stored = join(s3.dir, "data", bucket, ...key.split("/")) + "._S3rver_object";
  const wrapper = join(dir, "rclone-corrupting");
  write(
    wrapper,
    `#!/usr/bin/env bash
rclone "$@"; rc=$?
if ((rc == 0)) && [[ " $* " == *" copy "* && " $* " == *"/objects "* && ! -e "${dir}/corrupted" && -f "${stored}" ]]; then
  printf 'CORRUPTED-IN-R2' | dd of="${stored}" bs=1 seek=0 conv=notrunc status=none
  touch "${dir}/corrupted"
fi
exit $rc
`,
    0o755,
  );
  return wrapper;
}

async function manifestKeys(bucket: string, prefix: string): Promise<string[]> {
  const r = await rclone(s3, ["lsf", "--files-only", `r2:${bucket}/${prefix}/manifests`]);
  return r.stdout.split("\n").filter(Boolean).sort();
}

describe("verification reads the bytes back", () => {
  it("fails, naming the object, when R2 alters an object after the upload (listing size and MD5 still right)", async () => {
    const root = tmp("readback");
    const data = join(root, "data");
    const clip = randomBytes(300_000);
    write(join(data, "outputs/user001/clip.mp4"), clip);
    write(join(data, "outputs/user001/still.png"), randomBytes(20_000));
    const prefix = uniquePrefix("readback");
    const key = `${prefix}/outputs/${objectKey(sha256(clip))}`;
    const r = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix], {
      env: env(root, { RCLONE_CMD: corruptingRclone(root, USERS, key) }),
      input: r2Secrets(s3),
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`VERIFY HASH MISMATCH: r2:${USERS}/${key} (user001/clip.mp4)`);
    // A run that did not verify leaves no manifest behind for a restore to pick.
    expect(await manifestKeys(USERS, `${prefix}/outputs`)).toEqual([]);
  });
});
