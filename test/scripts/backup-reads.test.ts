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
    const r = await run(wrapper, args, { env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi" }, input: r2Secrets(s3) });
    expect(r.code, r.stderr).toBe(0);
    const rchar = Number(/rchar: (\d+)/.exec(readFileSync(io, "utf8"))![1]);
    // Hashing: tee reads the file once and feeds sha256sum and md5sum through pipes (3 x SIZE of
    // read calls); the upload reads it once more; the read-back stays under 1 x. A third read of
    // the file by rclone adds 1 x SIZE (before: 5.28 x; after: 4.28 x).
    expect(rchar / SIZE).toBeLessThan(4.8);
  });
});
