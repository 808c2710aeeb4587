// The nightly read-back of a large object that arrives short while R2 stays up (one answer cut
// mid-body, the next connection answered): the object is unreadable, not "R2 unreachable". Named
// as such, a night heals it (a fresh copy under a new key); called "R2 unreachable", every night
// failed on it with the wrong cause and fix (seen in the fault rehearsal after curl replaced rclone).
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, run, tmp, useS3, write } from "./helpers";
import { cuttingRelay } from "../support/cutting-relay";

const HOST = "127.0.102.31";
const s3 = useS3(HOST);
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("the read-back of a large object that arrives short, R2 up", () => {
  it("names the object as unreadable, never 'R2 unreachable'; the next run verifies", async () => {
    const root = tmp("short-readback");
    const data = join(root, "data");
    const video = randomBytes(7 * 1024 * 1024 + 11);
    write(join(data, "outputs/user001/video.mp4"), video);
    write(join(data, "outputs/user001/still.png"), randomBytes(5_000));
    const prefix = `t-short-${randomBytes(4).toString("hex")}`;
    const args = (endpoint: string) => ["--r2-endpoint", endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    const env = { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi" };
    const night = await run("backup-mello.sh", args(s3.endpoint), { env, input: r2Secrets(s3) });
    expect(night.code, night.stderr).toBe(0);

    const relay = await cuttingRelay({ upstream: s3.endpoint, host: HOST, victim: sha256(video), afterBytes: 64 * 1024, then: "answer-short" });
    let r;
    try {
      r = await run("backup-mello.sh", [...args(relay.endpoint), "--verify-only"], { env, input: r2Secrets(s3), timeoutMs: 120_000 });
    } finally {
      relay.close();
    }
    expect(relay.cuts(), "the relay never cut the object's answer").toBe(1);
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/R2 unreachable/);
    expect(r.stderr).toContain(sha256(video));

    const again = await run("backup-mello.sh", [...args(s3.endpoint), "--verify-only"], { env, input: r2Secrets(s3) });
    expect(again.code, again.stderr).toBe(0);
  });
});
