// The day restore's R2 fallback with the workshop's FLAT buckets (issue 14, item 4): an SFS cache with
// no snapshot and no worker tarball, and buckets holding only `config/<name>-<YYYY-MM-DD>.tar.gz` and
// `<image>-<YYYY-MM-DD>.tar.gz` (no manifests of ours). restore-instance.sh --layout flat takes the
// newest of each (dates compared as dates), checks every copy against the listing's ETag (a multipart
// one computed locally) and only then unpacks or loads it. Real bash, rclone, curl, tar and versitygw
// on loopback; shims only for systemctl, tailscale and docker.
import { createHash, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeShims, r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3("127.0.103.3");
const CACHE = "comfyume-cache-backups";
const WORKER = "comfyume-worker-container-backups";
const REDIS_PASSWORD = "redis-PLANTED-" + Math.random().toString(36).slice(2);

/** A tar.gz of FILES (relative path -> content), members dated 2023 so nothing local is older. */
function tarball(files: Record<string, string | Buffer>): Buffer {
  const d = tmp("flat-tar-src");
  for (const [p, c] of Object.entries(files)) {
    write(join(d, p), c);
    utimesSync(join(d, p), 1_700_000_000, 1_700_000_000);
  }
  const out = join(tmp("flat-tar-out"), "t.tar.gz");
  const r = spawnSync("tar", ["-czf", out, "-C", d, ...Object.keys(files)]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return readFileSync(out);
}

/** A `docker save`-shaped tarball; `layerBytes` of random data (a 6 MiB one is uploaded in 5 MiB parts). */
function image(seed: string, layerBytes = 32 * 1024): { body: Buffer; id: string } {
  const config = JSON.stringify({ architecture: "amd64", seed });
  const id = createHash("sha256").update(config).digest("hex");
  const body = tarball({
    "manifest.json": JSON.stringify([{ Config: `blobs/sha256/${id}`, RepoTags: [`comfyui-worker:${seed}`], Layers: [] }]),
    [`blobs/sha256/${id}`]: config,
    "layer.bin": randomBytes(layerBytes),
  });
  return { body, id: `sha256:${id}` };
}

/** Uploads as the workshop's operator did: rclone, 5 MiB parts above 5 MiB (multipart ETags). */
async function upload(bucket: string, files: Record<string, Buffer>): Promise<void> {
  const src = tmp("flat-src");
  for (const [key, body] of Object.entries(files)) write(join(src, key), body);
  const r = await rclone(s3, ["copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, `r2:${bucket}`]);
  expect(r.code, r.stderr).toBe(0);
}

const SNAPSHOT_STEPS = ["--skip", "tailscale", "--skip", "ssh-host-keys", "--skip", "project", "--skip", "config"];
const NO_WORKER = ["--skip", "worker", "--skip", "health-comfyui", "--skip", "health-redis"];

function restore(sfs: string, root: string, shimEnv: Record<string, string>, extra: string[]) {
  return run("restore-instance.sh", ["--sfs", sfs, "--r2-endpoint", s3.endpoint, "--layout", "flat", ...extra], {
    env: { ...shimEnv, COMFYUME_ROOT: root, RCLONE_RETRIES: "1" },
    input: `REDIS_PASSWORD=${REDIS_PASSWORD}\n${r2Secrets(s3)}`,
    timeoutMs: 120_000,
  });
}

function emptySfs(): string {
  const sfs = join(tmp("flat-day-sfs"), "mnt/sfs");
  write(join(sfs, ".keep"), "");
  return sfs;
}

describe("restore-instance --layout flat: the R2 fallback reads the workshop's flat buckets", () => {
  let newest: { body: Buffer; id: string };
  let older: { body: Buffer; id: string };

  it("an empty SFS cache and only flat buckets: the newest config and image (dates as dates) are verified, unpacked and loaded", async () => {
    older = image("2026-1-9");
    newest = image("2026-01-12", 6 * 1048576 + 123);
    await upload(CACHE, {
      // As strings "2026-1-9" sorts after "2026-01-12": the date must decide.
      "config/comfyui-settings-2026-1-9.tar.gz": tarball({ "comfy.settings.json": '{"v":9}\n' }),
      "config/comfyui-settings-2026-01-12.tar.gz": tarball({ "comfy.settings.json": '{"v":12}\n' }),
      "config/nginx-2025-12-30.tar.gz": tarball({ "nginx.conf": "server { listen 80; }\n" }),
    });
    await upload(WORKER, {
      "comfyui-worker-2026-1-9.tar.gz": older.body,
      "comfyui-worker-2026-01-12.tar.gz": newest.body,
      "redis-2026-02-01.tar.gz": image("redis").body,
    });

    const sfs = emptySfs();
    const shims = makeShims();
    const root = tmp("flat-day-host");
    const r = await restore(sfs, root, shims.env, ["--worker-image-name", "comfyui-worker", ...SNAPSHOT_STEPS, ...NO_WORKER]);
    expect(r.code, r.stderr).toBe(0);

    // Config: the newest tarball of each name, unpacked where the month's flat seed puts it.
    expect(JSON.parse(readFileSync(join(sfs, "cache/config/comfyui-settings/comfy.settings.json"), "utf8")).v).toBe(12);
    expect(readFileSync(join(sfs, "cache/config/nginx/nginx.conf"), "utf8")).toContain("listen 80");
    // Image: the newest comfyui-worker tarball, byte for byte, its multipart ETag computed locally; loaded.
    expect(readFileSync(join(sfs, "worker-image.tar.gz")).equals(newest.body)).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`multipart ETag of r2:${WORKER}/comfyui-worker-2026-01-12\\.tar\\.gz verified: [0-9a-f]{32}-2`));
    const loaded = readFileSync(join(shims.state, "docker-images"), "utf8");
    expect(loaded).toContain(newest.id);
    expect(loaded).not.toContain(older.id);
    expect(shims.calls().filter((c) => c.startsWith("docker load"))).toHaveLength(1);
    // The keys reached no log line and no recorded command line.
    const log = readFileSync(join(root, "var/log/comfyume/restore-instance.log"), "utf8");
    for (const text of [log, r.stderr, r.stdout, shims.calls().join("\n")]) {
      expect(text).not.toContain(s3.secret);
      expect(text).not.toContain(REDIS_PASSWORD);
    }
    // One step table in the restore's log (the day's restore report reads from the first "STEP" line on);
    // seed-flat.sh's own lines and table are in their own log, named in the restore's.
    expect(log.match(/^STEP /gm)).toHaveLength(1);
    const flatLog = readFileSync(join(root, "var/log/comfyume/restore-instance.flat.log"), "utf8");
    expect(flatLog).toMatch(/restoring comfyui-worker: r2:comfyume-worker-container-backups\/comfyui-worker-2026-01-12\.tar\.gz/);
    expect(log).toContain("restore-instance.flat.log");

    // A second day on the same SFS: the cache now holds what it needs; nothing is fetched again.
    const again = await restore(sfs, root, shims.env, ["--worker-image-name", "comfyui-worker", ...SNAPSHOT_STEPS, ...NO_WORKER]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/fetching/);
    expect(again.stderr).toMatch(/^worker-image\s+[\d.]+\s+unchanged/m);
  });

  it("names the fixes: several images without --worker-image-name; snapshot steps with no snapshot anywhere", async () => {
    const shims = makeShims();
    const sfs = emptySfs();
    const several = await restore(sfs, tmp("flat-day-host"), shims.env, [...SNAPSHOT_STEPS, ...NO_WORKER]);
    expect(several.code).toBe(1);
    expect(several.stderr).toMatch(/several images \(comfyui-worker,redis\).*--worker-image-name \(comfyume:seed\.workerImageName\)/);
    expect(shims.calls().filter((c) => c.startsWith("docker load"))).toEqual([]);

    // The identity, project and .env steps need an instance snapshot (backup-instance.sh); a flat
    // bucket has none: the error says so and how to go on, after the config tarballs were restored.
    const sfs2 = emptySfs();
    const noSnap = await restore(sfs2, tmp("flat-day-host"), shims.env, ["--worker-image-name", "comfyui-worker", "--expected-tailscale-ip", "100.64.0.9", ...NO_WORKER]);
    expect(noSnap.code).toBe(1);
    expect(noSnap.stderr).toMatch(/FAILED in step 'snapshot'.*no instance snapshot.*backup-instance\.sh.*--skip tailscale --skip ssh-host-keys --skip project --skip config \(comfyume:restore\.skip\)/);
    expect(existsSync(join(sfs2, "cache/config/comfyui-settings/comfy.settings.json"))).toBe(true);
  });

  it("a damaged image in the bucket is refused by name: nothing is put in place or loaded", async () => {
    s3.corruptObject(WORKER, "comfyui-worker-2026-01-12.tar.gz");
    const shims = makeShims();
    const sfs = emptySfs();
    const r = await restore(sfs, tmp("flat-day-host"), shims.env, ["--worker-image-name", "comfyui-worker", ...SNAPSHOT_STEPS, ...NO_WORKER]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`ETAG MISMATCH: r2:${WORKER}/comfyui-worker-2026-01-12\\.tar\\.gz .*Re-upload`));
    expect(r.stderr).toMatch(/FAILED in step 'worker-image': restoring the worker set from the flat bucket failed \(restoring worker from r2:\S+: 1 tarball\(s\) failed.*restore-instance\.flat\.log/);
    expect(existsSync(join(sfs, "worker-image.tar.gz"))).toBe(false);
    expect(shims.calls().filter((c) => c.startsWith("docker load"))).toEqual([]);
  });
});
