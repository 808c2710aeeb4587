// One read per changed file (issue 13): a large changed file is read once to hash it (SHA-256 and
// MD5 from one read) and once to send it. rclone, left to itself, reads a multipart upload's whole
// source once more beforehand to store its own MD5 in the object's metadata, which the engine
// never uses (its check is the SHA-256 of the bytes read back): at 25 GB, a third disk read.
// Measured as the read calls (rchar) of the backup's whole process tree, from a bash that reaps it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();
const SIZE = 12 * 1024 * 1024;

describe("a changed multipart file", () => {
  it("is read from its disk once to hash and once to send, not a third time for rclone's own MD5", async () => {
    const root = tmp("reads");
    const data = join(root, "data");
    write(join(data, "outputs/user001/video.mp4"), randomBytes(SIZE));
    const io = join(root, "io");
    const wrapper = join(root, "measure.sh");
    write(wrapper, `bash "$@"; rc=$?; cat /proc/$$/io >${JSON.stringify(io)}; exit $rc\n`);
    const args = [join(__dirname, "../../scripts/host/backup-mello.sh"), "--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", `t-reads-${randomBytes(4).toString("hex")}`, "--state-dir", join(root, "state")];
    const env = { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi" };
    const r = await run(wrapper, args, { env, input: r2Secrets(s3) });
    expect(r.code, r.stderr).toBe(0);
    const rchar = Number(/rchar: (\d+)/.exec(readFileSync(io, "utf8"))![1]);
    // The read-back of the object (downloaded and hashed through pipes: its SHA-256 and, being
    // multipart, its ETag's part MD5s) reads no local file: measured apart, by --verify-only, which
    // reads the object back the same way, and left out.
    const v = await run(wrapper, [...args, "--verify-only"], { env, input: r2Secrets(s3) });
    expect(v.code, v.stderr).toBe(0);
    const readBack = Number(/rchar: (\d+)/.exec(readFileSync(io, "utf8"))![1]);
    // Hashing (tee, sha256sum and md5sum on one read) and the upload, net of the read-back:
    // measured 3.05 x SIZE of read calls; a third read of the file by rclone adds 1 x SIZE (with it
    // rclone also stores an MD5, so --verify-only no longer reads the object back: 7.07 x).
    expect((rchar - readBack) / SIZE).toBeLessThan(3.6);
  });
});
