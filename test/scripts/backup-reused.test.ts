// Objects a night REUSES (already in R2, vouched for by the last verified manifest) are not trusted
// on their listing alone: R2 may alter stored bytes while its listing keeps the old size and ETag,
// and a multipart object's ETag holds no MD5 of the whole object at all. Each night reads back a
// rotating, bounded sample of reused objects; a copy that reads back wrong is healed (a fresh copy
// under a new generation key, append-only) and the night still verifies.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();
const USERS = "comfyume-user-files-backups";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const objectKey = (sha: string) => `objects/${sha.slice(0, 2)}/${sha}`;
const uniquePrefix = (what: string) => `t-${what}-${randomBytes(4).toString("hex")}`;
const pause = () => new Promise((r) => setTimeout(r, 1100)); // dated manifests are per second

/** Multipart from 5 MiB on (rclone's own settings, read from its environment), as R2 sees a model file. */
function env(root: string, extra: Record<string, string> = {}): Record<string, string> {
  return { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_S3_UPLOAD_CUTOFF: "5Mi", RCLONE_S3_CHUNK_SIZE: "5Mi", ...extra };
}

/** The number of parts in the ETag the S3 server stored for an object (versitygw keeps it in a user xattr). */
function storedParts(file: string): number {
  const dump = execFileSync("getfattr", ["-d", "--absolute-names", file], { encoding: "utf8" });
  return Number(/^user\.etag=.*-(\d+)\D*$/m.exec(dump)?.[1] ?? 1);
}

async function remoteSha(bucket: string, key: string): Promise<string> {
  const r = await rclone(s3, ["hashsum", "sha256", "--download", `r2:${bucket}/${key}`]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split(/\s+/)[0];
}

describe("a reused object altered in R2", () => {
  it("a reused multipart object whose bytes R2 altered (same size, same ETag) is read back and healed under a new key", async () => {
    const root = tmp("reused");
    const data = join(root, "data");
    const video = randomBytes(12 * 1024 * 1024);
    write(join(data, "outputs/user001/video.mp4"), video);
    write(join(data, "outputs/user001/still.png"), randomBytes(20_000));
    const prefix = uniquePrefix("reused");
    const key = `${prefix}/outputs/${objectKey(sha256(video))}`;
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, "--state-dir", join(root, "state"), "--sample-percent", "100"];
    const night1 = await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(night1.code, night1.stderr).toBe(0);
    expect(storedParts(s3.objectFile(USERS, key))).toBe(3); // really multipart: 3 parts

    s3.corruptObject(USERS, key); // same size, the listing keeps the old ETag
    await pause();
    const before = s3.events().length;
    const night2 = await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(night2.code, night2.stderr).toBe(0);
    expect(night2.stderr).toContain(`HEALING: r2:${USERS}/${key} (user001/video.mp4) reads back as`);
    // The fresh copy is a new key; the bad one is never overwritten or deleted (append-only).
    const created = s3.events().slice(before).filter((e) => e.event.startsWith("ObjectCreated")).map((e) => e.key);
    expect(created).toContain(`${key}.g2`);
    expect(created).not.toContain(key);
    expect(s3.events().filter((e) => e.event.startsWith("ObjectRemoved"))).toEqual([]);
    expect(await remoteSha(USERS, `${key}.g2`)).toBe(sha256(video));
    const manifest = (await rclone(s3, ["cat", `r2:${USERS}/${/verified r2:\S+?\/(\S+\/manifests\/\S+\.tsv)/.exec(night2.stderr)![1]}`])).stdout;
    expect(manifest.split("\n").find((l) => l.split("\t")[3] === "user001/video.mp4")!.split("\t")[4]).toBe(`${objectKey(sha256(video))}.g2`);
  });

  it("with the default sample, every reused object is read back in turn: an altered one is healed within as many nights as objects", async () => {
    const root = tmp("rotate");
    const data = join(root, "data");
    const files = [0, 1, 2, 3].map((i) => randomBytes(40_000 + i));
    files.forEach((b, i) => write(join(data, `outputs/user00${i}/img-${i}.png`), b));
    const prefix = uniquePrefix("rotate");
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    expect((await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) })).code).toBe(0);
    const key = `${prefix}/outputs/${objectKey(sha256(files[2]))}`;
    s3.corruptObject(USERS, key);
    let healedOn = 0;
    for (let night = 2; night <= 5 && !healedOn; night++) {
      await pause();
      const r = await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("reading back a rotating sample of reused objects: 1 of 4");
      if (r.stderr.includes(`HEALING: r2:${USERS}/${key} (user002/img-2.png) reads back as`)) healedOn = night;
    }
    expect(healedOn).toBeGreaterThan(0);
    expect(await remoteSha(USERS, `${key}.g2`)).toBe(sha256(files[2]));
  });
});
