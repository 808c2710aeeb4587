// The morning restore at workshop scale (issue 13): seed-sfs / r2_restore_tree start rclone and the
// hashing tools a fixed number of times whatever the number of files, and read each restored file
// once to check its SHA-256 (seed-sfs used to hash every file twice, one process per file), while a
// wrong byte still fails the restore naming the file, and nothing lands under a final name unchecked.
// Real bash, real rclone, a real S3 endpoint on loopback; speed itself is in `npm run bench:scale`.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createServer, connect } from "node:net";
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, run, sha256, tmp, treeHashes, useS3, write } from "./helpers";

const s3 = useS3();
const MODELS = "comfyume-model-vault-backups";
const FILES = 40;

/** An SFS whose models set holds FILES small files in a few directories; backed up once. */
async function backedUpModels(): Promise<{ sfs: string; mkey: string; files: string[] }> {
  const sfs = join(tmp("src"), "mnt/sfs");
  const files: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const rel = `models/d${i % 4}/f${i}.safetensors`;
    write(join(sfs, rel), randomBytes(1024 + i * 97));
    files.push(rel);
  }
  const b = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models"], {
    env: { COMFYUME_ROOT: tmp("host"), RCLONE_RETRIES: "1" },
    input: r2Secrets(s3),
    timeoutMs: 120_000,
  });
  expect(b.code, b.stderr).toBe(0);
  const mkey = new RegExp(`r2:${MODELS}/(models/manifests/\\S+\\.tsv)`).exec(b.stderr)![1];
  return { sfs, mkey, files };
}

/** PATH shims recording every start of a tool that could read a file (tool, stdin, args), and an RCLONE_CMD counting its starts. */
function recorders(): { env: Record<string, string>; starts: (tool: string) => string[] } {
  const dir = tmp("recorders");
  const log = join(dir, "starts.log");
  writeFileSync(log, "");
  for (const tool of ["sha256sum", "md5sum", "tee", "cat", "dd", "head", "cmp", "openssl", "b2sum", "sha1sum", "ln", "cp", "mv"]) {
    const real = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => existsSync(p));
    if (!real) continue;
    writeFileSync(join(dir, tool), `#!/bin/bash\nprintf '%s\\t%s\\t%s\\n' ${tool} "$(readlink /proc/$$/fd/0)" "$*" >>${JSON.stringify(log)}\nexec ${real} "$@"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  const rcloneCmd = join(dir, "rclone-counting");
  writeFileSync(rcloneCmd, `#!/bin/bash\nprintf 'rclone\\t\\t%s\\n' "$1" >>${JSON.stringify(log)}\nexec rclone "$@"\n`);
  chmodSync(rcloneCmd, 0o755);
  return {
    env: { PATH: `${dir}:${process.env.PATH}`, RCLONE_CMD: rcloneCmd },
    starts: (tool) => readFileSync(log, "utf8").split("\n").filter((l) => l.split("\t")[0] === tool),
  };
}

async function seed(dst: string, mkey: string, env: Record<string, string> = {}) {
  return run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--only", "models", "--manifest", `models=${mkey}`, "--min-free-mb", "1"], {
    env: { COMFYUME_ROOT: dst, RCLONE_RETRIES: "1", ...env },
    input: r2Secrets(s3),
    timeoutMs: 120_000,
  });
}

describe("restore cost does not grow in processes with the number of files", () => {
  it(`seed-sfs of ${FILES} files: rclone and sha256sum start O(1) times, each file is hashed from one read`, async () => {
    const { sfs: src, mkey, files } = await backedUpModels();
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const rec = recorders();
    const r = await seed(dst, mkey, rec.env);
    expect(r.code, r.stderr).toBe(0);
    const skip = /^(\.comfyume|\.keep)/;
    expect(treeHashes(join(dst, "mnt/sfs"), skip)).toEqual(treeHashes(src, skip));

    // Bucket check, manifest lookup, manifest read and one copy of all objects: not one per file.
    expect(rec.starts("rclone").length, rec.starts("rclone").join("\n")).toBeLessThanOrEqual(5);
    expect(rec.starts("sha256sum").length, rec.starts("sha256sum").join("\n")).toBeLessThanOrEqual(4);
    // Installing the verified files: not a process per file (an `ln` start cost ~9 ms under load).
    const installs = ["ln", "cp", "mv"].flatMap((t) => rec.starts(t));
    expect(installs.length, installs.join("\n")).toBeLessThanOrEqual(5); // a few fixed ones (manifest, state)
    // Each file's bytes are read once for hashing: under its final name or its staged object name.
    const hashing = ["sha256sum", "md5sum", "tee", "cat", "dd", "head", "cmp", "openssl", "b2sum", "sha1sum"].flatMap((t) => rec.starts(t));
    for (const rel of files) {
      const sha = sha256(join(src, rel));
      const reads = hashing.filter((l) => l.includes(rel) || l.includes(sha));
      expect(reads.length, `${rel} read ${reads.length} times:\n${reads.join("\n")}`).toBe(1);
    }

    // A second run finds every file right: still O(1) processes, every file read once.
    const again = recorders();
    const r2 = await seed(dst, mkey, again.env);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(new RegExp(`0 fetched, ${FILES} kept`));
    expect(again.starts("sha256sum").length).toBeLessThanOrEqual(4);
  }, 300_000);

  it("each object costs one request: a GET, no HEAD before it (R2 bills both; latency per request)", async () => {
    const { mkey } = await backedUpModels();
    // Every request line the restore sends, seen by a relay in front of the S3 endpoint.
    const requests: string[] = [];
    const target = new URL(s3.endpoint);
    const relay = createServer((client) => {
      const up = connect(Number(target.port), target.hostname);
      client.on("data", (d: Buffer) => {
        for (const m of d.toString("latin1").matchAll(/^(GET|HEAD|PUT|POST) (\S+) HTTP/gm)) requests.push(`${m[1]} ${m[2]}`);
        up.write(d);
      });
      up.pipe(client);
      for (const s of [client, up]) s.on("error", () => undefined).on("close", () => (client.destroy(), up.destroy()));
    });
    const port = await new Promise<number>((res) => relay.listen(0, target.hostname, () => res((relay.address() as { port: number }).port)));
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    let r;
    try {
      r = await run("seed-sfs.sh", ["--r2-endpoint", `http://${target.hostname}:${port}`, "--only", "models", "--manifest", `models=${mkey}`, "--min-free-mb", "1"], {
        env: { COMFYUME_ROOT: dst, RCLONE_RETRIES: "1" },
        input: r2Secrets(s3),
        timeoutMs: 120_000,
      });
    } finally {
      relay.close();
    }
    expect(r.code, r.stderr).toBe(0);
    const objects = requests.filter((l) => l.includes("/objects/"));
    expect(objects.filter((l) => l.startsWith("GET")).length, objects.join("\n")).toBe(FILES);
    expect(objects.filter((l) => l.startsWith("HEAD"))).toEqual([]);
  }, 300_000);

  it("a wrong byte in one object fails the restore naming the file; nothing lands under its final name", async () => {
    const { sfs: src, mkey, files } = await backedUpModels();
    const victim = files[7];
    const sha = sha256(join(src, victim));
    s3.corruptObject(MODELS, `models/objects/${sha.slice(0, 2)}/${sha}`); // same size, bytes wrong
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    const r = await seed(dst, mkey);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`(${victim.slice("models/".length)})`);
    expect(r.stderr).toMatch(/1 file\(s\) failed/);
    const dir = join(dst, "mnt/sfs", victim, "..");
    expect(existsSync(join(dst, "mnt/sfs", victim))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes("partial"))).toEqual([]);
    // Every other file was checked and installed (a re-run fetches only the bad one).
    for (const rel of files.filter((f) => f !== victim)) expect(sha256(join(dst, "mnt/sfs", rel))).toBe(sha256(join(src, rel)));
  }, 300_000);

  it("large objects, hashed while they stream in: a wrong byte fails the same way; the rest restore", async () => {
    const { sfs: src, mkey, files } = await backedUpModels();
    const victim = files[5];
    const sha = sha256(join(src, victim));
    s3.corruptObject(MODELS, `models/objects/${sha.slice(0, 2)}/${sha}`); // same size, bytes wrong
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    // Every object counts as large here: each streams through curl | tee | the SHA-256.
    const r = await seed(dst, mkey, { COMFYUME_R2_STREAM_MIN_BYTES: "1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`(${victim.slice("models/".length)})`);
    expect(r.stderr).toMatch(/1 file\(s\) failed/);
    expect(existsSync(join(dst, "mnt/sfs", victim))).toBe(false);
    for (const rel of files.filter((f) => f !== victim)) expect(sha256(join(dst, "mnt/sfs", rel))).toBe(sha256(join(src, rel)));
  }, 300_000);

  it("a download whose bytes differ from the manifest's SHA-256 (the downloader reported success) is named and never installed", async () => {
    const { sfs: src, mkey, files } = await backedUpModels();
    const victim = files[3];
    const sha = sha256(join(src, victim));
    const dst = tmp("dst");
    write(join(dst, "mnt/sfs/.keep"), "");
    // After the download, one staged object is altered in place (same size): only our SHA-256 check can see it.
    const dir = tmp("lying");
    const staged = join(dst, "mnt/sfs/models/.comfyume-staging", sha.slice(0, 2), sha);
    const realCurl = execFileSync("bash", ["-c", "command -v curl"], { encoding: "utf8" }).trim();
    writeFileSync(
      join(dir, "curl"),
      // The lie happens before curl reports the transfers done (its output is held back until then):
      // the restore hashes each file as soon as curl says it is complete.
      `#!/bin/bash\n[[ " $* " == *" --parallel "* ]] || exec ${realCurl} "$@"\nout=$(${realCurl} "$@"); rc=$?\nstaged=${JSON.stringify(staged)}\nif [[ -f $staged ]]; then printf CORRUPTED-BY-TEST | dd of="$staged" bs=1 seek=5 conv=notrunc status=none; fi\nprintf '%s\\n' "$out"\nexit $rc\n`,
    );
    chmodSync(join(dir, "curl"), 0o755);
    const r = await seed(dst, mkey, { PATH: `${dir}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`HASH MISMATCH: \\S+/${sha} \\(${victim.slice("models/".length)}\\) downloaded with sha256 [0-9a-f]{64}, manifest says ${sha}; not installed`));
    expect(existsSync(join(dst, "mnt/sfs", victim))).toBe(false);
    // A re-run (the wrapper no longer lying) fetches just that file.
    const again = await seed(dst, mkey);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`1 fetched, ${FILES - 1} kept`));
    expect(sha256(join(dst, "mnt/sfs", victim))).toBe(sha);
  }, 300_000);
});
