// The backup engine under faults, against its own real S3 endpoint (versitygw) on loopback with real
// rclone: R2 altering bytes after an upload (its listing still reporting the right size and MD5),
// healing on the next run, sets that come out empty or shrunk, and R2 going away mid-upload.
// Faults are injected from the test side only: a wrapper around the real rclone (RCLONE_CMD)
// that tampers with the S3 server's storage directory, or points one rclone call at a dead port.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeShims, r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();

const USERS = "comfyume-user-files-backups";
const WORKER = "comfyume-worker-container-backups";
const MODELS = "comfyume-model-vault-backups";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const objectKey = (sha: string) => `objects/${sha.slice(0, 2)}/${sha}`;
const uniquePrefix = (what: string) => `t-${what}-${randomBytes(4).toString("hex")}`;

function env(root: string, extra: Record<string, string> = {}): Record<string, string> {
  return { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", ...extra };
}

/**
 * A wrapper around the real rclone that, right after the first successful upload of objects,
 * overwrites the first bytes of one stored object in the S3 server's storage directory: same size,
 * and the server keeps reporting the MD5 it stored at upload (R2 "lying" in its listing).
 */
function corruptingRclone(dir: string, bucket: string, key: string): string {
  const stored = s3.objectFile(bucket, key);
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

/** SHA-256 of an object in R2, read back through rclone. */
async function remoteSha(bucket: string, key: string): Promise<string> {
  const r = await rclone(s3, ["hashsum", "sha256", "--download", `r2:${bucket}/${key}`]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split(/\s+/)[0];
}

const manifestKeyIn = (stderr: string, bucket: string) => new RegExp(`verified r2:${bucket}/(\\S+/manifests/\\S+\\.tsv)`).exec(stderr)![1];

describe("a bad object heals on the next run", () => {
  it("night 1 fails on an object altered in R2; night 2 uploads a fresh copy under a new key and verifies; restore gets the right bytes", async () => {
    const root = tmp("heal");
    const image = randomBytes(256 * 1024);
    write(join(root, "mnt/sfs/worker-image.tar.gz"), image);
    const sha = sha256(image);
    const badKey = `worker/${objectKey(sha)}`;
    const args = ["--r2-endpoint", s3.endpoint, "--only", "worker"];
    const night1 = await run("backup-to-r2.sh", args, { env: env(root, { RCLONE_CMD: corruptingRclone(root, WORKER, badKey) }), input: r2Secrets(s3) });
    expect(night1.code, night1.stderr).toBe(1);
    expect(night1.stderr).toContain(`VERIFY HASH MISMATCH: r2:${WORKER}/${badKey} (worker-image.tar.gz)`);

    const before = s3.events().length;
    const night2 = await run("backup-to-r2.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(night2.code, night2.stderr).toBe(0);
    const mkey = manifestKeyIn(night2.stderr, WORKER);
    const entry = (await rclone(s3, ["cat", `r2:${WORKER}/${mkey}`])).stdout.split("\n").find((l) => l.split("\t")[3] === "worker-image.tar.gz")!.split("\t");
    const healedKey = `worker/${entry[4]}`;
    expect(healedKey).toMatch(new RegExp(`^worker/objects/${sha.slice(0, 2)}/${sha}\\.g\\d+$`));
    expect(await remoteSha(WORKER, healedKey)).toBe(sha);
    // Append-only: the bad object is never rewritten or deleted; the fresh copy is a new key.
    const created = s3.events().slice(before).filter((e) => e.event.startsWith("ObjectCreated")).map((e) => e.key);
    expect(created).toContain(healedKey);
    expect(created).not.toContain(badKey);
    expect(s3.events().filter((e) => e.event.startsWith("ObjectRemoved"))).toEqual([]);

    // Night 3 converges: nothing to send but its manifest, still pointing at the good copy.
    await new Promise((r) => setTimeout(r, 1100));
    const mid = s3.events().length;
    const night3 = await run("backup-to-r2.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(night3.code, night3.stderr).toBe(0);
    expect(s3.events().slice(mid).filter((e) => e.event.startsWith("ObjectCreated")).every((e) => e.key.includes("/manifests/"))).toBe(true);

    const dst = tmp("heal-dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const seed = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker", "--manifest", `worker=${manifestKeyIn(night3.stderr, WORKER)}`], { env: env(dst), input: r2Secrets(s3) });
    expect(seed.code, seed.stderr).toBe(0);
    expect(sha256(readFileSync(join(dst, "mnt/sfs/worker-image.tar.gz")))).toBe(sha);
  });

  it("an object truncated in R2 after it was verified is replaced on the next run (listing shows the size)", async () => {
    const root = tmp("trunc");
    const data = join(root, "data");
    const still = randomBytes(30_000);
    write(join(data, "outputs/user001/still.png"), still);
    const prefix = uniquePrefix("trunc");
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix];
    expect((await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) })).code).toBe(0);
    const key = `${prefix}/outputs/${objectKey(sha256(still))}`;
    truncateSync(s3.objectFile(USERS, key), 1000);
    await new Promise((r) => setTimeout(r, 1100));
    const verify = await run("backup-mello.sh", [...args, "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain(`VERIFY SIZE MISMATCH: r2:${USERS}/${key} (user001/still.png): remote 1000 bytes, manifest 30000`);
    const heal = await run("backup-mello.sh", args, { env: env(root), input: r2Secrets(s3) });
    expect(heal.code, heal.stderr).toBe(0);
    expect(heal.stderr).toContain("HEALING: r2 listing shows");
    expect(await remoteSha(USERS, `${key}.g2`)).toBe(sha256(still));
  });

  it("restore still reads manifests written before keys were recorded (v1: four columns)", async () => {
    const root = tmp("v1");
    write(join(root, "mnt/sfs/models/a.safetensors"), randomBytes(10_000));
    write(join(root, "mnt/sfs/models/sub/b.safetensors"), randomBytes(5_000));
    const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], { env: env(root), input: r2Secrets(s3) });
    expect(b.code, b.stderr).toBe(0);
    const v2 = (await rclone(s3, ["cat", `r2:${MODELS}/${manifestKeyIn(b.stderr, MODELS)}`])).stdout;
    const v1 = ["# comfyume-manifest v1: sha256\tmd5\tsize\tpath", ...v2.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split("\t").slice(0, 4).join("\t"))].join("\n") + "\n";
    const v1Key = "models/manifests/2000-01-01T000000Z.tsv";
    expect((await rclone(s3, ["rcat", `r2:${MODELS}/${v1Key}`], v1)).code).toBe(0);
    const dst = tmp("v1-dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const seed = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "models", "--manifest", `models=${v1Key}`], { env: env(dst), input: r2Secrets(s3) });
    expect(seed.code, seed.stderr).toBe(0);
    expect(readFileSync(join(dst, "mnt/sfs/models/sub/b.safetensors"))).toEqual(readFileSync(join(root, "mnt/sfs/models/sub/b.safetensors")));
  });
});

describe("a set that comes out empty or far smaller than its last verified backup", () => {
  const lastFailure = (stderr: string) => stderr.split("\n").filter((l) => l.includes("FAILED in step")).pop() ?? "";

  it("fails naming the set, both counts and the flag, against the last backup in R2 (not local state); --accept-shrink lets it through", async () => {
    const data = join(tmp("shrink"), "data");
    for (const n of [1, 2, 3, 4]) write(join(data, `outputs/user00${n}/out.png`), randomBytes(10_000));
    const prefix = uniquePrefix("shrink");
    const set = `${prefix}/outputs`;
    const args = (...extra: string[]) => ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix, ...extra];
    const first = await run("backup-mello.sh", args(), { env: env(tmp("host")), input: r2Secrets(s3) });
    expect(first.code, first.stderr).toBe(0);
    const manifests = await manifestKeys(USERS, set);

    // Three of four files gone (a path moved?). A brand-new host: its local state knows nothing.
    for (const n of [2, 3, 4]) rmSync(join(data, `outputs/user00${n}/out.png`));
    const shrunk = await run("backup-mello.sh", args(), { env: env(tmp("host")), input: r2Secrets(s3) });
    expect(shrunk.code).toBe(1);
    const line = lastFailure(shrunk.stderr);
    expect(line).toContain(`set '${set}'`);
    expect(line).toMatch(/1 file\(s\), 10000 bytes now/);
    expect(line).toMatch(/4 file\(s\), 40000 bytes in the last verified backup/);
    expect(line).toContain(`--accept-shrink ${set}`);
    expect(line).toContain("backup.acceptShrink");
    expect(await manifestKeys(USERS, set)).toEqual(manifests);

    // A looser tolerance, or the operator's confirmation, lets it through.
    expect((await run("backup-mello.sh", args("--shrink-tolerance", "0.8"), { env: env(tmp("host")), input: r2Secrets(s3) })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    write(join(data, "outputs/user001/out.png"), randomBytes(1_000)); // same count, 10x fewer bytes
    const bytes = await run("backup-mello.sh", args(), { env: env(tmp("host")), input: r2Secrets(s3) });
    expect(bytes.code).toBe(1);
    expect(lastFailure(bytes.stderr)).toMatch(/1 file\(s\), 1000 bytes now, 1 file\(s\), 10000 bytes in the last verified backup/);
    const accepted = await run("backup-mello.sh", args("--accept-shrink", "models", "--accept-shrink", set), { env: env(tmp("host")), input: r2Secrets(s3) });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stderr).toContain(`set '${set}' shrank`);

    const bad = await run("backup-mello.sh", args("--shrink-tolerance", "1.5"), { env: env(tmp("host")), input: r2Secrets(s3) });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--shrink-tolerance '1\.5' must be a fraction between 0 and 1/);
  });

  it("a set reached through a symlinked mount point is backed up, not mistaken for empty", async () => {
    // The local cloud's /mnt/sfs is a symlink to the volume; a mount point may be one elsewhere too.
    const host = tmp("symlinked");
    const volume = join(tmp("volume"), "sfs");
    const image = randomBytes(20_000);
    write(join(volume, "worker-image.tar.gz"), image);
    mkdirSync(join(host, "mnt"), { recursive: true });
    symlinkSync(volume, join(host, "mnt/sfs"));
    const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker", "--shrink-tolerance", "1"], { env: env(host), input: r2Secrets(s3) });
    expect(r.code, r.stderr).toBe(0);
    const manifest = (await rclone(s3, ["cat", `r2:${WORKER}/${manifestKeyIn(r.stderr, WORKER)}`])).stdout;
    expect(manifest).toContain(`${sha256(image)}\t`);
  });

  it("an empty set fails even on its first backup; a missing source is an error of its own", async () => {
    const root = tmp("empty");
    const data = join(root, "data");
    write(join(data, "inputs/.keep-dir/placeholder"), "");
    rmSync(join(data, "inputs/.keep-dir"), { recursive: true });
    const prefix = uniquePrefix("empty");
    const args = (...extra: string[]) => ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "inputs", "--prefix", prefix, ...extra];
    const empty = await run("backup-mello.sh", args(), { env: env(root), input: r2Secrets(s3) });
    expect(empty.code).toBe(1);
    expect(lastFailure(empty.stderr)).toMatch(new RegExp(`set '${prefix}/inputs' is empty: no files under \\S+/data/inputs.*--accept-shrink ${prefix}/inputs`));
    expect(await manifestKeys(USERS, `${prefix}/inputs`)).toEqual([]);
    const accepted = await run("backup-mello.sh", args("--accept-shrink", `${prefix}/inputs`), { env: env(root), input: r2Secrets(s3) });
    expect(accepted.code, accepted.stderr).toBe(0);

    const missing = await run("backup-mello.sh", args("--dirs", "outputs", "--accept-shrink", `${prefix}/outputs`), { env: env(root), input: r2Secrets(s3) });
    expect(missing.code).toBe(1);
    expect(lastFailure(missing.stderr)).toMatch(new RegExp(`set '${prefix}/outputs': source \\S+/data/outputs is missing`));

    // backup-to-r2: a cache directory with no files (the SFS not mounted, only its mount point) fails too.
    const host = tmp("host");
    write(join(host, "mnt/sfs/cache/backups/.keep"), "");
    rmSync(join(host, "mnt/sfs/cache/backups/.keep"));
    const sfsEmpty = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "cache"], { env: env(host), input: r2Secrets(s3) });
    expect(sfsEmpty.code).toBe(1);
    expect(lastFailure(sfsEmpty.stderr)).toMatch(/set 'cache' is empty: no files under \S+\/mnt\/sfs\/cache/);
    const noSfs = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker"], { env: env(host), input: r2Secrets(s3) });
    expect(noSfs.code).toBe(1);
    expect(lastFailure(noSfs.stderr)).toMatch(/set 'worker': source \S+\/worker-image\.tar\.gz is missing: is the SFS mounted at \S+\? .*--only/);
  });
});

describe("a day-scoped scratch starts blank every morning (--fresh-volume)", () => {
  const lastFailure = (stderr: string) => stderr.split("\n").filter((l) => l.includes("FAILED in step")).pop() ?? "";

  it("a quiet day (empty inputs, fewer outputs than yesterday) backs up, but only from the mounted volume itself", async () => {
    const shims = makeShims();
    const root = tmp("fresh");
    const data = join(root, "mnt/scratch");
    const prefix = uniquePrefix("fresh");
    const args = (...extra: string[]) => ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "inputs,outputs", "--prefix", prefix, ...extra];
    const withShims = { ...env(root), ...shims.env };
    // Yesterday: a busy day on yesterday's scratch.
    for (let i = 0; i < 6; i++) write(join(data, `outputs/day1-${i}.png`), randomBytes(2048));
    write(join(data, "inputs/photo.jpg"), randomBytes(1024));
    const day1 = await run("backup-mello.sh", args(), { env: withShims, input: r2Secrets(s3) });
    expect(day1.code, day1.stderr).toBe(0);
    // Today: a new blank scratch, nobody uploaded anything, one output.
    rmSync(data, { recursive: true });
    mkdirSync(join(data, "inputs"), { recursive: true });
    write(join(data, "outputs/day2.png"), randomBytes(2048));
    // Not mounted (an empty mount point directory): refused, naming the mount and the fix.
    const unmounted = await run("backup-mello.sh", args("--fresh-volume"), { env: withShims, input: r2Secrets(s3) });
    expect(unmounted.code).toBe(1);
    expect(lastFailure(unmounted.stderr)).toMatch(/is not a mount point: the scratch volume is not mounted/);
    // Mounted: the quiet day is normal for a volume that started blank this morning.
    write(join(shims.env.PROC_MOUNTS), `/dev/vdb ${data} ext4 rw 0 0\n`);
    const today = await run("backup-mello.sh", args("--fresh-volume"), { env: withShims, input: r2Secrets(s3) });
    expect(today.code, today.stderr).toBe(0);
    expect((await manifestKeys(USERS, `${prefix}/outputs`)).length).toBe(2);
    // Without the flag, the same day fails the shrink check (the month-scoped behaviour).
    const month = await run("backup-mello.sh", args(), { env: withShims, input: r2Secrets(s3) });
    expect(month.code).toBe(1);
    expect(lastFailure(month.stderr)).toMatch(/is empty|shrank/);
  });
});

describe("every failure ends with one line on stderr naming the cause and the fix", () => {
  const lastLine = (stderr: string) => stderr.trimEnd().split("\n").pop() ?? "";

  it("R2 unreachable mid-upload", async () => {
    const root = tmp("down");
    const data = join(root, "data");
    write(join(data, "outputs/user001/clip.mp4"), randomBytes(50_000));
    // R2 answers the listing, then is gone when the upload starts.
    const wrapper = join(root, "rclone-down");
    write(wrapper, `#!/usr/bin/env bash\n[[ " $* " == *" copy "* ]] && export RCLONE_CONFIG_R2_ENDPOINT=http://127.0.0.1:9\nexec rclone "$@"\n`, 0o755);
    const r = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", uniquePrefix("down")], {
      env: env(root, { RCLONE_CMD: wrapper }),
      input: r2Secrets(s3),
    });
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/FAILED: R2 unreachable at http:\/\/127\.0\.0\.1:\d+ while uploading to r2:\S+ \(.*connection refused.*\); nothing in R2 was deleted or overwritten\. Check the network and --r2-endpoint, then re-run/);
  });

  it("an object that reads back wrong", async () => {
    const root = tmp("mismatch");
    const data = join(root, "data");
    const clip = randomBytes(40_000);
    write(join(data, "outputs/user001/clip.mp4"), clip);
    const prefix = uniquePrefix("mismatch");
    const r = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix], {
      env: env(root, { RCLONE_CMD: corruptingRclone(root, USERS, `${prefix}/outputs/${objectKey(sha256(clip))}`) }),
      input: r2Secrets(s3),
    });
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      new RegExp(`FAILED: R2 object mismatch in r2:${USERS}/${prefix}/outputs: 1 of 1 object\\(s\\) missing or altered \\(named above\\); no manifest written, nothing overwritten\\. Re-run the backup: it uploads fresh copies under new keys`),
    );
  });

  it("an empty set", async () => {
    const root = tmp("empty-msg");
    write(join(root, "data/inputs/.gone"), "");
    rmSync(join(root, "data/inputs/.gone"));
    const prefix = uniquePrefix("emptymsg");
    const r = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--data-dir", join(root, "data"), "--dirs", "inputs", "--prefix", prefix], { env: env(root), input: r2Secrets(s3) });
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(new RegExp(`FAILED: set '${prefix}/inputs' is empty: .*--accept-shrink ${prefix}/inputs \\(config backup\\.acceptShrink`));
  });
});

describe("a manifest is never overwritten", () => {
  it("two backups of a set in the same second: the second takes a later key or stops, the first manifest stays", async () => {
    const root = tmp("same-second");
    const data = join(root, "data");
    const prefix = uniquePrefix("same-second");
    // A clock stuck on one second, for the manifest's stamp only (rclone's copyto --immutable replaces an
    // existing object of other bytes: measured, "Copied (replaced existing)").
    const bin = join(root, "bin");
    write(join(bin, "date"), `#!/usr/bin/env bash\nif [[ " $* " == *" +%Y-%m-%dT%H%M%SZ "* ]]; then echo 2026-01-01T000000Z; else exec /usr/bin/date "$@"; fi\n`, 0o755);
    const stuck = { ...env(root), PATH: `${bin}:${process.env.PATH}` };
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "outputs", "--prefix", prefix];
    write(join(data, "outputs/first.png"), randomBytes(2048));
    const first = await run("backup-mello.sh", args, { env: stuck, input: r2Secrets(s3) });
    expect(first.code, first.stderr).toBe(0);
    const key = `${prefix}/outputs/manifests/2026-01-01T000000Z.tsv`;
    const before = (await rclone(s3, ["cat", `r2:${USERS}/${key}`])).stdout;
    expect(before).toContain("first.png");
    write(join(data, "outputs/second.png"), randomBytes(2048));
    const second = await run("backup-mello.sh", args, { env: stuck, input: r2Secrets(s3), timeoutMs: 60_000 });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/already exists/);
    expect((await rclone(s3, ["cat", `r2:${USERS}/${key}`])).stdout).toBe(before);
  });
});
