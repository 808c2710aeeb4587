// backup-to-r2.sh, backup-mello.sh and seed-sfs.sh against a real S3 endpoint (versitygw) on
// loopback with real rclone: append-only dated keys, SHA-256 manifests, verification that
// names missing or altered objects, incremental uploads, resumable checksummed seeding.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, rclone, run, tmp, treeHashes, useS3, write } from "./helpers";

const s3 = useS3();

const MODELS = "comfyume-model-vault-backups";
const USERS = "comfyume-user-files-backups";

/** An SFS with models (two 1 MiB "checkpoints" and small files), a cache and a worker tarball. */
function makeSfs(root: string): string {
  const sfs = join(root, "mnt/sfs");
  write(join(sfs, "models/checkpoints/ltx-test.safetensors"), randomBytes(1024 * 1024));
  write(join(sfs, "models/text_encoders/gemma-test.safetensors"), randomBytes(1024 * 1024));
  write(join(sfs, "models/loras/style.safetensors"), randomBytes(4096));
  write(join(sfs, "cache/backups/verda-worker/latest"), "2026-01-01T000000Z\n");
  write(join(sfs, "cache/backups/verda-worker/2026-01-01T000000Z/config.tar.gz"), randomBytes(2048));
  write(join(sfs, "worker-image.tar.gz"), randomBytes(256 * 1024));
  return sfs;
}

function env(root: string, extra: Record<string, string> = {}): Record<string, string> {
  return { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", ...extra };
}

function bytesPut(since: number): { puts: { key: string; size: number }[]; bytes: number } {
  const ev = s3.events().slice(since);
  const puts = ev.filter((e) => e.event.startsWith("ObjectCreated"));
  return { puts, bytes: puts.reduce((a, e) => a + e.size, 0) };
}

describe("backup-to-r2", () => {
  it("uploads with dated append-only keys and a manifest, then sends almost nothing when unchanged", async () => {
    const root = tmp("b2r");
    const sfs = makeSfs(root);
    const before = s3.events().length;
    const r1 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint], { env: env(root), input: r2Secrets(s3) });
    expect(r1.code, r1.stderr).toBe(0);
    const first = bytesPut(before);
    // models (2 MiB + 4 KiB) + cache (2 KiB + the 19-byte "latest") + worker tarball (256 KiB)
    const dataBytes = 2 * 1024 * 1024 + 4096 + 2048 + 19 + 256 * 1024;
    expect(first.bytes).toBeGreaterThanOrEqual(dataBytes);
    expect(r1.stderr).toMatch(/verified r2:comfyume-model-vault-backups\/models\/manifests\/\d{4}-\d{2}-\d{2}T\d{6}Z\.tsv: 3 object\(s\)/);
    for (const p of first.puts) expect(p.key).toMatch(/^(models|cache|worker)\/(objects\/[0-9a-f]{2}\/[0-9a-f]{64}|manifests\/\d{4}-\d{2}-\d{2}T\d{6}Z\.tsv)$/);

    // The manifest lists sha256, md5, size and path of every file.
    const mkey = /r2:comfyume-model-vault-backups\/(models\/manifests\/\S+\.tsv)/.exec(r1.stderr)![1];
    const manifest = (await rclone(s3, ["cat", `r2:${MODELS}/${mkey}`])).stdout;
    expect(manifest).toMatch(/^[0-9a-f]{64}\t[0-9a-f]{32}\t1048576\tcheckpoints\/ltx-test\.safetensors\tobjects\/[0-9a-f]{2}\/[0-9a-f]{64}$/m);

    // Second run, nothing changed: only the three small dated manifests go out.
    await new Promise((r) => setTimeout(r, 1100)); // a new second, so a new dated manifest key
    const mid = s3.events().length;
    const r2 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint], { env: env(root), input: r2Secrets(s3) });
    expect(r2.code, r2.stderr).toBe(0);
    const second = bytesPut(mid);
    const ratio = second.bytes / dataBytes;
    console.log(`[bench] backup-to-r2 unchanged re-run: ${second.bytes} bytes sent (S3 request log) / ${dataBytes} bytes data = ${ratio.toFixed(5)}; script says ${/BYTES_SENT=(\d+)/.exec(r2.stderr)?.[1]}`);
    expect(ratio).toBeLessThanOrEqual(0.01);
    expect(second.puts.every((p) => p.key.includes("/manifests/"))).toBe(true);

    // One model changes: only that object (plus manifests) is sent.
    writeFileSync(join(sfs, "models/loras/style.safetensors"), randomBytes(4096));
    await new Promise((r) => setTimeout(r, 1100));
    const mid2 = s3.events().length;
    const r3 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], { env: env(root), input: r2Secrets(s3) });
    expect(r3.code, r3.stderr).toBe(0);
    const third = bytesPut(mid2);
    expect(third.puts.filter((p) => p.key.includes("/objects/"))).toHaveLength(1);
    expect(third.puts.find((p) => p.key.includes("/objects/"))!.size).toBe(4096);

    // Append-only: no key was ever written twice, nothing was deleted.
    const all = s3.events();
    expect(all.filter((e) => e.event.startsWith("ObjectRemoved"))).toHaveLength(0);
    const keys = all.filter((e) => e.event.startsWith("ObjectCreated")).map((e) => `${e.bucket}/${e.key}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("verification names a tampered object and a missing object (exit 1)", async () => {
    const root = tmp("b2r");
    const sfs = makeSfs(root);
    const r1 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], { env: env(root), input: r2Secrets(s3) });
    expect(r1.code, r1.stderr).toBe(0);
    const mkey = /r2:comfyume-model-vault-backups\/(models\/manifests\/\S+\.tsv)/.exec(r1.stderr)![1];
    const manifest = (await rclone(s3, ["cat", `r2:${MODELS}/${mkey}`])).stdout;
    const line = (rel: string) => manifest.split("\n").find((l) => l.split("\t")[3] === rel)!.split("\t")[0];
    const altered = line("checkpoints/ltx-test.safetensors");
    const gone = line("text_encoders/gemma-test.safetensors");
    const key = (sha: string) => `models/objects/${sha.slice(0, 2)}/${sha}`;

    // Same size, different bytes: caught by the hash, not just the size. Written in one PUT (a known
    // size), so the listing shows its MD5 as R2 would; a streamed `rclone rcat` goes multipart and R2
    // lists no MD5 for it (ETag "<md5 of parts>-<n>"), which the listing check cannot tell from the original.
    const replacement = join(root, "replacement.bin");
    writeFileSync(replacement, randomBytes(1024 * 1024));
    const t = await rclone(s3, ["copyto", replacement, `r2:${MODELS}/${key(altered)}`]);
    expect(t.code, t.stderr).toBe(0);
    const v1 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models", "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(v1.code, v1.stderr).toBe(1);
    expect(v1.stderr).toContain(`VERIFY`);
    expect(v1.stderr).toContain(`${key(altered)} (checkpoints/ltx-test.safetensors)`);

    const d = await rclone(s3, ["deletefile", `r2:${MODELS}/${key(gone)}`]);
    expect(d.code, d.stderr).toBe(0);
    const v2 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models", "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(v2.code).toBe(1);
    expect(v2.stderr).toContain(`VERIFY MISSING: r2:${MODELS}/${key(gone)} (text_encoders/gemma-test.safetensors)`);
    expect(v2.stderr).toMatch(/2 of 3 object\(s\) missing or altered/);

    // The next backup heals without overwriting: the altered key is left as it is, a fresh copy
    // goes to a new key (named in the manifest), the deleted one is sent again.
    await new Promise((r) => setTimeout(r, 1100));
    const mid = s3.events().length;
    const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], { env: env(root), input: r2Secrets(s3) });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain(`HEALING: r2 listing shows ${key(altered).slice("models/".length)} (checkpoints/ltx-test.safetensors) missing or altered`);
    const created = s3.events().slice(mid).filter((e) => e.event.startsWith("ObjectCreated")).map((e) => e.key);
    expect(created).not.toContain(key(altered));
    expect(created).toContain(`${key(altered)}.g2`);
    expect(created).toContain(key(gone));
    expect(existsSync(join(sfs, "models/checkpoints/ltx-test.safetensors"))).toBe(true);
    const v3 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models", "--verify-only", "--deep-verify"], { env: env(root), input: r2Secrets(s3) });
    expect(v3.code, v3.stderr).toBe(0);
  });

  it("fails clearly when R2 is unreachable, the keys are wrong or the endpoint is mistyped", async () => {
    const root = tmp("b2r");
    makeSfs(root);
    const r1 = await run("backup-to-r2.sh", ["--r2-endpoint", "http://127.0.0.1:9", "--only", "models"], { env: env(root), input: r2Secrets(s3) });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/FAILED in step 'models'.*cannot reach R2 bucket 'comfyume-model-vault-backups'/);
    const planted = "PLANTED-wrong-secret-" + randomBytes(6).toString("hex");
    const r2 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], {
      env: env(root),
      // The right key id with a wrong secret: the server's signature check refuses it.
      input: `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=${planted}\n`,
    });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/cannot reach R2 bucket/);
    expect(r2.stderr).not.toContain(planted);
    const r3 = await run("backup-to-r2.sh", ["--r2-endpoint", "https://abc.r2.cloudflarestorage.com.eu"], { env: env(root), input: r2Secrets(s3) });
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/R2_ENDPOINT .* looks mistyped/);
    const r4 = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint], { env: env(root), input: "" });
    expect(r4.code).toBe(1);
    expect(r4.stderr).toMatch(/R2_ACCESS_KEY_ID missing: send it on stdin/);
  });

  it("never puts the secret key in argv, the log file or the output", async () => {
    const root = tmp("b2r");
    makeSfs(root);
    // A recording wrapper around the real rclone captures every argv.
    const wrapper = join(root, "rclone-recorder");
    write(wrapper, `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>"${root}/argv.log"\nexec rclone "$@"\n`, 0o755);
    const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker,models"], {
      // AWS_CA_BUNDLE (set on some machines) breaks rclone's S3 client unless turned into --ca-cert.
      env: env(root, { RCLONE_CMD: wrapper, AWS_CA_BUNDLE: "/etc/ssl/certs/ca-certificates.crt" }),
      input: r2Secrets(s3),
    });
    expect(r.code, r.stderr).toBe(0);
    const argv = readFileSync(join(root, "argv.log"), "utf8");
    expect(argv.length).toBeGreaterThan(0);
    const logFile = readFileSync(join(root, "var/log/comfyume/backup-to-r2.log"), "utf8");
    expect(logFile).toMatch(/verified r2:/);
    for (const text of [argv, logFile, r.stdout, r.stderr]) expect(text).not.toContain(s3.secret);
    // No rclone config file with secrets on disk.
    expect(existsSync(join(process.env.HOME ?? "/root", ".config/rclone/rclone.conf"))).toBe(false);
  });
});

describe("backup-mello", () => {
  it("backs up user_data, outputs and inputs with manifests and verification; --quick skips outputs", async () => {
    const root = tmp("mello");
    const data = join(root, "home/dev/comfyume/data");
    write(join(data, "user_data/user001/comfyui/workflows/a.json"), `{"id":"${randomBytes(4).toString("hex")}"}`);
    write(join(data, "outputs/user001/ComfyUI_00001_.png"), randomBytes(50_000));
    write(join(data, "inputs/cat.png"), randomBytes(10_000));
    write(join(data, "user_data/user002/my workflow (v2) – é.json"), `{"n":"${randomBytes(4).toString("hex")}"}`);
    const r1 = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint], { env: env(root), input: r2Secrets(s3) });
    expect(r1.code, r1.stderr).toBe(0);
    for (const [d, n] of [["user_data", 2], ["outputs", 1], ["inputs", 1]]) {
      expect(r1.stderr).toMatch(new RegExp(`verified r2:${USERS}/mello/${d}/manifests/\\S+\\.tsv: ${n} object`));
    }
    const um = (await rclone(s3, ["lsf", `r2:${USERS}/mello/user_data/manifests`])).stdout.trim().split("\n").sort().pop()!;
    expect((await rclone(s3, ["cat", `r2:${USERS}/mello/user_data/manifests/${um}`])).stdout).toMatch(/\tuser002\/my workflow \(v2\) – é\.json\tobjects\/[0-9a-f]{2}\/[0-9a-f]{64}\n/);
    const listing = (await rclone(s3, ["lsf", "-R", "--files-only", `r2:${USERS}/mello`])).stdout;
    expect(listing).toMatch(/^outputs\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}$/m);

    await new Promise((r) => setTimeout(r, 1100));
    const r2 = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--quick"], { env: env(root), input: r2Secrets(s3) });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain("--quick: leaving out outputs");
    expect(r2.stderr).toMatch(/BYTES_SENT=(\d+) DATA_BYTES=(\d+)/);
    const [, sent, total] = /BYTES_SENT=(\d+) DATA_BYTES=(\d+)/.exec(r2.stderr)!;
    expect(Number(sent)).toBeLessThan(1000);
    expect(Number(total)).toBeGreaterThan(10_000);

    // Tamper with the inputs object: verification fails and names it.
    const inputsManifest = (await rclone(s3, ["lsf", `r2:${USERS}/mello/inputs/manifests`])).stdout.trim().split("\n").sort().pop()!;
    const sha = (await rclone(s3, ["cat", `r2:${USERS}/mello/inputs/manifests/${inputsManifest}`])).stdout.split("\n").find((l) => l.split("\t")[3] === "cat.png")!.split("\t")[0];
    await rclone(s3, ["rcat", `r2:${USERS}/mello/inputs/objects/${sha.slice(0, 2)}/${sha}`], "x".repeat(10_000));
    const v = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--verify-only"], { env: env(root), input: r2Secrets(s3) });
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`mello/inputs/objects/${sha.slice(0, 2)}/${sha} (cat.png)`);
  });

  it("fails naming a missing directory", async () => {
    const root = tmp("mello");
    write(join(root, "home/dev/comfyume/data/user_data/x"), "x");
    // (user_data is far smaller than the earlier test's: not what this test is about)
    const r = await run("backup-mello.sh", ["--r2-endpoint", s3.endpoint, "--shrink-tolerance", "1"], { env: env(root), input: r2Secrets(s3) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/set 'mello\/outputs': source \S+data\/outputs is missing .*leave it out of --dirs/);
  });
});

describe("seed-sfs", () => {
  it("seeds a fresh SFS byte for byte, resumes, and checks the manifest", async () => {
    const src = tmp("seedsrc");
    const srcSfs = makeSfs(src);
    // Own buckets' prefixes are shared with other tests: back up this SFS, then seed from its manifests.
    const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint], { env: env(src), input: r2Secrets(s3) });
    expect(b.code, b.stderr).toBe(0);
    const keys = [...b.stderr.matchAll(/step \S+: done in [\d.]+s \(sent \d+ of \d+ bytes; r2:([^/]+)\/(\S+\.tsv)\)/g)];
    const manifestArgs = keys.flatMap(([, bucket, key]) => ["--manifest", `${bucket.includes("model") ? "models" : bucket.includes("cache") ? "cache" : "worker"}=${key}`]);
    expect(manifestArgs).toHaveLength(6);

    const dst = tmp("seeddst");
    const sfs = join(dst, "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const r1 = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, ...manifestArgs], { env: env(dst), input: r2Secrets(s3) });
    expect(r1.code, r1.stderr).toBe(0);
    const skip = /^(\.comfyume|\.keep)/;
    expect(treeHashes(sfs, skip)).toEqual(treeHashes(srcSfs, skip)); // the backup keeps its hash state in <sfs>/.comfyume

    // Interrupted run: one file missing and a leftover partial download. Re-run fetches just that file.
    unlinkSync(join(sfs, "models/text_encoders/gemma-test.safetensors"));
    write(join(sfs, "models/text_encoders/gemma-test.safetensors.comfyume-partial"), "half");
    const r2 = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, ...manifestArgs], { env: env(dst), input: r2Secrets(s3) });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/models\s+[\d.]+\s+1 fetched, 2 kept/);
    expect(treeHashes(sfs, skip)).toEqual(treeHashes(srcSfs, skip));

    // A corrupted local file is an error naming it; --repair moves it aside and fetches it.
    writeFileSync(join(sfs, "models/loras/style.safetensors"), randomBytes(4096));
    const r3 = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, ...manifestArgs], { env: env(dst), input: r2Secrets(s3) });
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/MISMATCH: \S+models\/loras\/style\.safetensors differs from the manifest/);
    const r4 = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--repair", ...manifestArgs], { env: env(dst), input: r2Secrets(s3) });
    expect(r4.code, r4.stderr).toBe(0);
    expect(readdirSync(join(sfs, "models/loras")).some((f) => f.startsWith("style.safetensors.corrupt-"))).toBe(true);
    expect(treeHashes(join(sfs, "models"), /corrupt|partial/)).toEqual(treeHashes(join(srcSfs, "models")));
  });

  it("stops before downloading when the SFS lacks space, and when R2 is unreachable", async () => {
    const src = tmp("seedsrc");
    makeSfs(src);
    const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker"], { env: env(src), input: r2Secrets(s3) });
    expect(b.code, b.stderr).toBe(0);
    const mkey = /r2:comfyume-worker-container-backups\/(worker\/manifests\/\S+\.tsv)/.exec(b.stderr)![1];
    const dst = tmp("seeddst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const full = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker", "--manifest", `worker=${mkey}`, "--min-free-mb", "999999999"], { env: env(dst), input: r2Secrets(s3) });
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(/FAILED in step 'worker-image': low disk space on \S+: \d+ MiB free, \d+ MiB needed/);
    expect(readdirSync(join(dst, "mnt/sfs"))).toEqual([".keep"]);
    const down = await run("seed-sfs.sh", ["--r2-endpoint", "http://127.0.0.1:9", "--only", "worker"], { env: env(dst), input: r2Secrets(s3) });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach R2 bucket 'comfyume-worker-container-backups'/);
  });

  it("refuses to install a tampered R2 object and names it", async () => {
    const src = tmp("seedsrc");
    makeSfs(src);
    const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker"], { env: env(src), input: r2Secrets(s3) });
    expect(b.code, b.stderr).toBe(0);
    const mkey = /r2:comfyume-worker-container-backups\/(worker\/manifests\/\S+\.tsv)/.exec(b.stderr)![1];
    const sha = (await rclone(s3, ["cat", `r2:comfyume-worker-container-backups/${mkey}`])).stdout.split("\n")[1].split("\t")[0];
    await rclone(s3, ["rcat", `r2:comfyume-worker-container-backups/worker/objects/${sha.slice(0, 2)}/${sha}`], "tampered");
    const dst = tmp("seeddst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const r = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "worker", "--manifest", `worker=${mkey}`], { env: env(dst), input: r2Secrets(s3) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`HASH MISMATCH: r2:comfyume-worker-container-backups/worker/objects/${sha.slice(0, 2)}/${sha} (worker-image.tar.gz)`);
    expect(existsSync(join(dst, "mnt/sfs/worker-image.tar.gz"))).toBe(false);
    expect(existsSync(join(dst, "mnt/sfs/worker-image.tar.gz.comfyume-partial"))).toBe(false);
  });
});
