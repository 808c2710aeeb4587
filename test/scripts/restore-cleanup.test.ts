// A restore that fails or is stopped leaves nothing running behind it: the background download of
// large objects (curl | perl | openssl) is stopped by the exit hook, so it neither keeps
// writing into the staging directory nor holds the lock, and an immediate re-run proceeds.
// Real bash, real rclone, a real S3 endpoint on loopback.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, rclone, run, sha256, tmp, useS3, write } from "./helpers";

const s3 = useS3();
const MODELS = "comfyume-model-vault-backups";

const CACHE = "comfyume-cache-backups";
const shaOf = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Uploads FILES (path under the set -> bytes) as content-addressed objects plus a manifest; returns its key. */
async function publish(files: Record<string, Buffer>, bucket = MODELS, prefix = "models"): Promise<string> {
  const lines = ["# comfyume-manifest v1: sha256\tmd5\tsize\tpath"];
  for (const [path, data] of Object.entries(files)) {
    const sha = shaOf(data);
    const md5 = createHash("md5").update(data).digest("hex");
    const r = await rclone(s3, ["rcat", `r2:${bucket}/${prefix}/objects/${sha.slice(0, 2)}/${sha}`], data);
    expect(r.code, r.stderr).toBe(0);
    lines.push(`${sha}\t${md5}\t${data.length}\t${path}`);
  }
  const key = `${prefix}/manifests/2030-02-01T000000Z.tsv`;
  const r = await rclone(s3, ["rcat", `r2:${bucket}/${key}`], lines.join("\n") + "\n");
  expect(r.code, r.stderr).toBe(0);
  return key;
}

/** True while PID is a live process (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("a stopped restore leaves no download running", () => {
  it("seed-sfs stopped while large objects stream: the streamer dies with it; a re-run takes the lock and restores", async () => {
    const files = { "d/big-a.safetensors": randomBytes(300_000), "d/big-b.safetensors": randomBytes(200_000), "small.json": randomBytes(900) };
    const mkey = await publish(files);
    const dir = tmp("slow");
    const pids = join(dir, "cat-pids");
    // A download that takes its time (a 25 GB model): each large object's stream (curl's GET of an
    // object to stdout, `-o -`) waits a minute first.
    const shims = join(dir, "bin");
    mkdirSync(shims);
    const realCurl = execFileSync("bash", ["-c", "command -v curl"], { encoding: "utf8" }).trim();
    // (the URL is in curl's config on its stdin, with the keys)
    writeFileSync(join(shims, "curl"), `#!/bin/bash\ncfg=$(cat)\nif [[ " $* " == *" -o - "* && $cfg == *"/objects/"* ]]; then echo $$ >>${JSON.stringify(pids)}; sleep 60; fi\nexec ${realCurl} "$@" <<<"$cfg"\n`);
    chmodSync(join(shims, "curl"), 0o755);
    const root = tmp("dst");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const args = ["--r2-endpoint", s3.endpoint, "--only", "models", "--manifest", `models=${mkey}`, "--min-free-mb", "1"];
    const env = { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", COMFYUME_R2_STREAM_MIN_BYTES: "100000" };
    let pid = 0;
    const first = run("seed-sfs.sh", args, { env: { ...env, PATH: `${shims}:${process.env.PATH}` }, input: r2Secrets(s3), timeoutMs: 120_000, onSpawn: (p) => (pid = p) });
    let ended = "";
    void first.then((r) => (ended = r.stderr || "(ended)"));
    await until("both large objects to start streaming", () => {
      if (ended) throw new Error(`seed-sfs ended before the test stopped it:\n${ended}`);
      return existsSync(pids) && readFileSync(pids, "utf8").trim().split("\n").length === 2;
    });
    process.kill(pid, "SIGTERM"); // the script alone (an operator's kill, a cancelled step), not its group
    // (not `await first`: that waits for every holder of the script's stderr, a leftover streamer too)
    await until("the stopped script to exit", () => !alive(pid));
    const streamers = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    const again = await run("seed-sfs.sh", args, { env, input: r2Secrets(s3), timeoutMs: 120_000 });
    const leftover = streamers.filter(alive);
    const stopped = await first;
    expect(stopped.code, stopped.stderr).toBe(143);
    expect(again.stderr, `stopped run:\n${stopped.stderr}\nps:\n${execFileSync("ps", ["-eo", "pid,pgid,ppid,args"], { encoding: "utf8" }).split("\n").filter((l) => /curl|sleep|seed|perl|openssl/.test(l)).join("\n")}`).not.toMatch(/holds the lock/);
    expect(leftover, "downloads still running after the restore stopped").toEqual([]);
    expect(again.code, again.stderr).toBe(0);
    for (const [path, data] of Object.entries(files)) expect(sha256(join(sfs, "models", path))).toBe(createHash("sha256").update(data).digest("hex"));
  }, 300_000);
});

describe("seed-sfs restores its sets side by side", () => {
  it("a wrong byte in one set's object fails the restore naming that set and the file; the other set is in place", async () => {
    const models = { "m/a.safetensors": randomBytes(40_000), "m/b.safetensors": randomBytes(7_000) };
    const cache = { "backups/x/project.tar.gz": randomBytes(9_000), "backups/x/config.tar.gz": randomBytes(3_000) };
    const modelsKey = await publish(models);
    const cacheKey = await publish(cache, CACHE, "cache");
    const victim = cache["backups/x/project.tar.gz"];
    s3.corruptObject(CACHE, `cache/objects/${shaOf(victim).slice(0, 2)}/${shaOf(victim)}`);
    const root = tmp("dst");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const r = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "models,cache", "--manifest", `models=${modelsKey}`, "--manifest", `cache=${cacheKey}`, "--min-free-mb", "1"], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" },
      input: r2Secrets(s3),
      timeoutMs: 120_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HASH MISMATCH: \S+ \(backups\/x\/project\.tar\.gz\)/);
    expect(r.stderr).toMatch(/restore of cache failed/);
    expect(r.stderr).not.toMatch(/restore of (models|cache models|models cache) failed/);
    expect(existsSync(join(sfs, "cache/backups/x/project.tar.gz"))).toBe(false);
    expect(sha256(join(sfs, "cache/backups/x/config.tar.gz"))).toBe(shaOf(cache["backups/x/config.tar.gz"]));
    for (const [path, data] of Object.entries(models)) expect(sha256(join(sfs, "models", path))).toBe(shaOf(data));
    // Both sets' steps are in the summary: models ok, cache FAILED.
    expect(r.stderr).toMatch(/^models\s+[\d.]+\s+2 fetched, 0 kept$/m);
    expect(r.stderr).toMatch(/^cache\s+[\d.]+\s+FAILED$/m);
  }, 300_000);
});
