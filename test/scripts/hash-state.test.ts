// The backup engine's hash state at workshop scale (issue 13): change detection that survives the
// nightly deletion of the instance (the SFS sets' state lives on the SFS, a scratch's on the scratch,
// a restore seeds it), and one read per changed file for both hashes. Real bash, real rclone, a
// real S3 endpoint on loopback.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, r2Secrets, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();

/** One "hashed N file(s), B bytes; reused M file(s), R bytes" line per set, in the order logged. */
function hashLines(stderr: string): { files: number; bytes: number; reused: number }[] {
  return [...stderr.matchAll(/hashed (\d+) file\(s\), (\d+) bytes; reused (\d+) file\(s\)/g)].map((m) => ({ files: +m[1], bytes: +m[2], reused: +m[3] }));
}

function makeSfs(sfs: string): void {
  write(join(sfs, "models/checkpoints/a.safetensors"), randomBytes(512 * 1024));
  write(join(sfs, "models/checkpoints/b.safetensors"), randomBytes(256 * 1024));
  write(join(sfs, "models/loras/c.safetensors"), randomBytes(4096));
  write(join(sfs, "cache/backups/verda-worker/latest"), "2026-01-01T000000Z\n");
  write(join(sfs, "cache/backups/verda-worker/2026-01-01T000000Z/config.tar.gz"), randomBytes(2048));
  write(join(sfs, "worker-image.tar.gz"), randomBytes(128 * 1024));
}

/** A night on a new instance: a fresh COMFYUME_ROOT (its OS disk), the same SFS. */
async function night(sfs: string, extra: string[] = []) {
  const root = tmp("host");
  const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, ...extra], {
    env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" },
    input: r2Secrets(s3),
    timeoutMs: 120_000,
  });
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const tick = () => new Promise((r) => setTimeout(r, 1100)); // a new second: a new dated manifest key

describe("hash state of the SFS sets lives on the SFS", () => {
  it("a second night on a fresh instance hashes 0 files; a changed or added file is re-hashed alone", async () => {
    const sfs = join(tmp("sfs"), "mnt/sfs");
    makeSfs(sfs);
    const n1 = await night(sfs);
    // models, cache, worker: everything is read once on the first night.
    expect(hashLines(n1.stderr).map((l) => l.files)).toEqual([3, 2, 1]);

    await tick();
    const n2 = await night(sfs);
    expect(hashLines(n2.stderr), n2.stderr).toEqual([
      { files: 0, bytes: 0, reused: 3 },
      { files: 0, bytes: 0, reused: 2 },
      { files: 0, bytes: 0, reused: 1 },
    ]);
    // The state is on the SFS, outside every set, and never in a manifest.
    expect(existsSync(join(sfs, ".comfyume/backup-state"))).toBe(true);
    expect(n2.stderr).not.toMatch(/\.comfyume\/backup-state.*\tobjects\//);

    // Night 3: one model rewritten with the same size (new mtime), one cache file added.
    await tick();
    writeFileSync(join(sfs, "models/loras/c.safetensors"), randomBytes(4096));
    write(join(sfs, "cache/backups/verda-worker/2026-01-02T000000Z/config.tar.gz"), randomBytes(3000));
    const n3 = await night(sfs);
    expect(hashLines(n3.stderr)).toEqual([
      { files: 1, bytes: 4096, reused: 2 },
      { files: 1, bytes: 3000, reused: 2 },
      { files: 0, bytes: 0, reused: 1 },
    ]);
    expect(n3.stderr).toMatch(/sent \d+ of \d+ bytes; r2:comfyume-model-vault-backups\/models\/manifests\//);
  }, 300_000);

  it("never trusts an entry for a file whose content changed with size and mtime put back", async () => {
    const sfs = join(tmp("sfs"), "mnt/sfs");
    makeSfs(sfs);
    await night(sfs, ["--only", "models"]);
    const file = join(sfs, "models/checkpoints/b.safetensors");
    const before = statSync(file);
    writeFileSync(file, randomBytes(256 * 1024));
    utimesSync(file, before.atime, before.mtime); // same size, same mtime: only the ctime tells
    await tick();
    const n2 = await night(sfs, ["--only", "models"]);
    expect(hashLines(n2.stderr)).toEqual([{ files: 1, bytes: 256 * 1024, reused: 2 }]);
  }, 300_000);
});

describe("a restore seeds the hash state", () => {
  it("the first night after a month-start seed-sfs reads none of the files it restored and checked", async () => {
    const old = join(tmp("sfs"), "mnt/sfs");
    makeSfs(old);
    await night(old, ["--shrink-tolerance", "1"]); // a smaller set than the earlier tests' is fine here
    // A new month: a blank SFS, filled from R2 by seed-sfs on the loader.
    const sfs = join(tmp("sfs"), "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const seeded = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--min-free-mb", "1"], {
      env: { COMFYUME_ROOT: tmp("loader"), RCLONE_RETRIES: "1" },
      input: r2Secrets(s3),
      timeoutMs: 120_000,
    });
    expect(seeded.code, seeded.stderr).toBe(0);
    await tick();
    const n1 = await night(sfs);
    expect(hashLines(n1.stderr), n1.stderr).toEqual([
      { files: 0, bytes: 0, reused: 3 },
      { files: 0, bytes: 0, reused: 2 },
      { files: 0, bytes: 0, reused: 1 },
    ]);
    // A file rewritten after the restore is read again.
    await tick();
    writeFileSync(join(sfs, "models/loras/c.safetensors"), randomBytes(4096));
    const n2 = await night(sfs, ["--only", "models"]);
    expect(hashLines(n2.stderr)).toEqual([{ files: 1, bytes: 4096, reused: 2 }]);
  }, 300_000);
});

/** Runs build_manifest from the real library: SRC OUT CACHE, with extra env. */
async function buildManifest(src: string, out: string, cache: string, env: Record<string, string> = {}) {
  const driver = join(tmp("driver"), "build.sh");
  write(driver, `#!/usr/bin/env bash\nset -euo pipefail\nsource ${JSON.stringify(join(REPO, "scripts/lib/common.sh"))}\nbuild_manifest "$@"\n`);
  const r = await run(driver, [src, out, cache], { env });
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe("the hash state file", () => {
  it("survives two writers at once, ignores damaged lines, and leaves no temporary files", async () => {
    const dir = tmp("data");
    for (let i = 0; i < 40; i++) write(join(dir, `f${i}.bin`), randomBytes(8192));
    const stateDir = join(tmp("state"), "backup-state");
    const cache = join(stateDir, "hash-cache-x.tsv");
    // Two hosts back up the same set at the same moment (two instances on one SFS).
    await Promise.all([buildManifest(dir, join(tmp("o"), "a.tsv"), cache), buildManifest(dir, join(tmp("o"), "b.tsv"), cache)]);
    expect(readdirSync(stateDir)).toEqual(["hash-cache-x.tsv"]);
    // A damaged line (a cut-off write on another system) is ignored, never trusted.
    writeFileSync(cache, readFileSync(cache, "utf8").replace(/^(f1\.bin\t\d+\t\S+\t\S+\t)[0-9a-f]{64}/m, "$1nothex"));
    const out = join(tmp("o"), "c.tsv");
    const r = await buildManifest(dir, out, cache);
    expect(hashLines(r.stderr)).toEqual([{ files: 1, bytes: 8192, reused: 39 }]);
    const line = readFileSync(out, "utf8").split("\n").find((l) => l.endsWith("\tf1.bin"))!;
    expect(line.split("\t")[0]).toBe(createHash("sha256").update(readFileSync(join(dir, "f1.bin"))).digest("hex"));
  });

  it("leaves a state directory that lies inside the set out of its manifest", async () => {
    const dir = tmp("data");
    write(join(dir, "a.bin"), randomBytes(100));
    const out = join(tmp("o"), "m.tsv");
    await buildManifest(dir, out, join(dir, ".comfyume/backup-state/hash-cache-x.tsv"));
    await buildManifest(dir, out, join(dir, ".comfyume/backup-state/hash-cache-x.tsv"));
    expect(readFileSync(out, "utf8")).not.toMatch(/backup-state/);
  });
});

describe("one read per changed file", () => {
  it("computes SHA-256 and MD5 from a single read of the file", async () => {
    const dir = tmp("data");
    const file = join(dir, "model.safetensors");
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    write(file, bytes);
    // Every tool that could read the file records what its stdin is and its arguments.
    const shims = tmp("readers");
    const log = join(shims, "reads.log");
    writeFileSync(log, "");
    for (const tool of ["sha256sum", "md5sum", "tee", "cat", "dd", "head", "openssl", "pv"]) {
      const real = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => existsSync(p));
      if (!real) continue;
      const shim = join(shims, tool);
      writeFileSync(shim, `#!/bin/bash\nprintf '%s\\t%s\\t%s\\n' ${tool} "$(readlink /proc/$$/fd/0)" "$*" >>${JSON.stringify(log)}\nexec ${real} "$@"\n`);
      chmodSync(shim, 0o755);
    }
    const out = join(tmp("o"), "m.tsv");
    await buildManifest(dir, out, join(tmp("state"), "c.tsv"), { PATH: `${shims}:${process.env.PATH}` });
    const opened = readFileSync(log, "utf8").split("\n").filter((l) => l && (l.split("\t")[1] === file || l.split("\t")[2].includes(file)));
    expect(opened, readFileSync(log, "utf8")).toHaveLength(1);
    const [sha, md5, size] = readFileSync(out, "utf8").split("\n")[1].split("\t");
    expect(sha).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(md5).toBe(createHash("md5").update(bytes).digest("hex"));
    expect(+size).toBe(bytes.length);
  });
});
