// Restoring the newest dated tarball from the workshop's flat buckets (issue 14, item 4): config as
// `config/<name>-<YYYY-MM-DD>.tar.gz`, images as `<image>-<YYYY-MM-DD>.tar.gz`, user data as
// `user-data-<YYYY-MM-DD-HH>.tar.gz`. The newest per name wins with dates compared as dates; the copy is
// checked against the listing (size, ETag) before it is unpacked or put in place. Real bash, rclone,
// curl, tar and versitygw on loopback.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3("127.0.103.2");
const CACHE = "comfyume-cache-backups";
const WORKER = "comfyume-worker-container-backups";
const USER_FILES = "comfyume-user-files-backups";

/** A tar.gz holding FILES (relative path -> content), with every member dated `mtime` (seconds). */
function tarball(files: Record<string, string>, mtime = 1_700_000_000): Buffer {
  const d = tmp("tar-src");
  for (const [p, c] of Object.entries(files)) {
    write(join(d, p), c);
    utimesSync(join(d, p), mtime, mtime);
  }
  const out = join(tmp("tar-out"), "t.tar.gz");
  const r = spawnSync("tar", ["-czf", out, "-C", d, ...Object.keys(files)]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return readFileSync(out);
}

async function upload(bucket: string, files: Record<string, Buffer>): Promise<void> {
  const src = tmp("dated-src");
  for (const [key, body] of Object.entries(files)) write(join(src, key), body);
  const r = await rclone(s3, ["copy", src, `r2:${bucket}`]);
  expect(r.code, r.stderr).toBe(0);
}

function seed(sfs: string, only: string, extra: string[] = []) {
  return run("seed-sfs.sh", ["--layout", "flat", "--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", only, "--min-free-mb", "1", ...extra], {
    env: { COMFYUME_ROOT: tmp("dated-root"), RCLONE_RETRIES: "1" },
    input: r2Secrets(s3),
  });
}

function objectReads(bucket: string): string[] {
  return readFileSync(join(s3.dir, "access.log"), "utf8")
    .split("\n")
    .filter((l) => l.includes(` ${bucket} `) && /\ss3_(GetObject|HeadObject)\s/.test(l))
    .map((l) => l.split(/\s+/)[8] ?? "");
}

describe("seed-flat: the newest dated tarball of each name", () => {
  beforeAll(() =>
    upload(CACHE, {
      // As strings "2026-9-30" sorts after "2026-10-01": the date must decide.
      "config/comfyui-2026-9-30.tar.gz": tarball({ "settings.json": "september\n" }),
      "config/comfyui-2026-10-01.tar.gz": tarball({ "settings.json": "october\n", "extra.yaml": "x: 1\n" }),
      // A name that is a prefix of another, and a year boundary.
      "config/comfyui-extra-2025-12-31.tar.gz": tarball({ "e.txt": "old year\n" }),
      "config/comfyui-extra-2026-01-01.tar.gz": tarball({ "e.txt": "new year\n" }),
      "config/nginx-2026-02-03.tar.gz": tarball({ "nginx.conf": "server {}\n" }),
      "config/broken-2026-02-30.tar.gz": tarball({ "never.txt": "no such date\n" }),
      "config/nested/deep-2027-01-01.tar.gz": tarball({ "deep.txt": "not a config of this prefix\n" }),
    }),
  );

  it("unpacks the newest config tarball per name (dates compared as dates); a second run copies nothing", async () => {
    const sfs = tmp("dated-sfs");
    const r = await seed(sfs, "cache");
    expect(r.code, r.stderr).toBe(0);
    const config = join(sfs, "cache/config");
    expect(readFileSync(join(config, "comfyui/settings.json"), "utf8")).toBe("october\n");
    expect(existsSync(join(config, "comfyui/extra.yaml"))).toBe(true);
    expect(readFileSync(join(config, "comfyui-extra/e.txt"), "utf8")).toBe("new year\n");
    expect(readFileSync(join(config, "nginx/nginx.conf"), "utf8")).toBe("server {}\n");
    expect(existsSync(join(config, "broken"))).toBe(false);
    expect(existsSync(join(config, "nested"))).toBe(false);
    expect(r.stderr).toMatch(/skipped r2 key config\/broken-2026-02-30\.tar\.gz: 2026-2-30 is not a date/);
    expect(r.stderr).toMatch(/3 restored, 0 unchanged/);

    const before = objectReads(CACHE).length;
    const again = await seed(sfs, "cache");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/0 restored, 3 unchanged/);
    expect(objectReads(CACHE).length).toBe(before);
  });

  it("keeps local files newer than the tarball's unless --force", async () => {
    const sfs = tmp("dated-sfs");
    const settings = join(sfs, "cache/config/comfyui/settings.json");
    write(settings, "edited locally\n");
    const r = await seed(sfs, "cache");
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(settings, "utf8")).toBe("edited locally\n");
    expect(r.stderr).toMatch(/kept 1 local file\(s\) in .*comfyui newer than the tarball's \(re-run with --force/);
    const forced = await seed(sfs, "cache", ["--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/3 restored, 0 unchanged/);
    expect(readFileSync(settings, "utf8")).toBe("october\n");
  });

  it("refuses a damaged tarball naming it, and unpacks nothing from it", async () => {
    const sfs = tmp("dated-sfs");
    s3.corruptObject(CACHE, "config/nginx-2026-02-03.tar.gz");
    const r = await seed(sfs, "cache");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`r2:${CACHE}/config/nginx-2026-02-03.tar.gz`);
    expect(r.stderr).toMatch(/ETAG MISMATCH.*re-upload/i);
    expect(existsSync(join(sfs, "cache/config/nginx"))).toBe(false);
    expect(readFileSync(join(sfs, "cache/config/comfyui/settings.json"), "utf8")).toBe("october\n");
  });

  it("user data: the newest <YYYY-MM-DD-HH> (hours compared as numbers); a clear error when there is none", async () => {
    const sfs = tmp("dated-sfs");
    const dest = tmp("mello-data");
    const none = await seed(sfs, "user-files", ["--user-files-dest", dest]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(new RegExp(`no dated tarball in r2:${USER_FILES}/ \\(expected <name>-<YYYY-MM-DD-HH>\\.tar\\.gz\\)`));
    await upload(USER_FILES, {
      "user-data-2026-10-01-9.tar.gz": tarball({ "user001/a.txt": "nine\n" }),
      "user-data-2026-10-01-10.tar.gz": tarball({ "user001/a.txt": "ten\n" }),
      "user-data-2026-9-30-23.tar.gz": tarball({ "user001/a.txt": "september\n" }),
      "user-data-2026-11-01.tar.gz": tarball({ "user001/a.txt": "daily form, not this set's\n" }),
    });
    const r = await seed(sfs, "user-files", ["--user-files-dest", dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dest, "user001/a.txt"), "utf8")).toBe("ten\n");
  });

  it("worker image: several images need --worker-image-name; the newest tarball of that image is put in place", async () => {
    const img = (seedText: string) => tarball({ "manifest.json": JSON.stringify([{ Config: seedText }]) });
    await upload(WORKER, {
      "comfyui-worker-2026-01-02.tar.gz": img("jan-2"),
      "comfyui-worker-2026-01-10.tar.gz": img("jan-10"),
      "redis-2026-05-01.tar.gz": img("redis"),
    });
    const sfs = tmp("dated-sfs");
    const several = await seed(sfs, "worker");
    expect(several.code).toBe(1);
    expect(several.stderr).toMatch(/several images \(comfyui-worker,redis\).*--worker-image-name/);
    const missing = await seed(sfs, "worker", ["--worker-image-name", "comfyui"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no comfyui-<YYYY-MM-DD>\.tar\.gz in r2:comfyume-worker-container-backups/);
    const r = await seed(sfs, "worker", ["--worker-image-name", "comfyui-worker"]);
    expect(r.code, r.stderr).toBe(0);
    const placed = spawnSync("tar", ["-xzOf", join(sfs, "worker-image.tar.gz"), "manifest.json"], { encoding: "utf8" });
    expect(placed.stdout).toContain("jan-10");
  });
});
