// The per-byte tools of the backup and the restore (issue 13, CPU per GB): hash_file's SHA-256 by
// openssl (the CPU's SHA instructions, ~0.6 CPU-s per GB against ~1.9 for coreutils) still from one
// read, and a multipart ETag's part MD5s in ONE process (split started md5sum once per 5 MiB part:
// ~0.7 CPU-s per GB in process starts and pipes). Same results either way; coreutils stays the
// fallback (COMFYUME_SHA256_TOOL=sha256sum, COMFYUME_ETAG_TOOL=split).
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTmp, REPO, tmp, write } from "./helpers";

afterAll(cleanupTmp);

const PART = 5 * 1024 * 1024;

/** S3's multipart ETag of BYTES uploaded in parts of PART bytes. */
function s3Etag(bytes: Buffer, part: number): string {
  const sums: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += part) sums.push(createHash("md5").update(bytes.subarray(off, off + part)).digest());
  return `${createHash("md5").update(Buffer.concat(sums)).digest("hex")}-${sums.length}`;
}

/** Runs SCRIPT (bash, common.sh sourced as $1, a work dir as $2) with PATH shims recording each start of the hashing tools. */
function runRecorded(script: string, env: Record<string, string> = {}): { out: string; starts: string[] } {
  const dir = tmp("hash-tools");
  const log = join(dir, "starts.log");
  writeFileSync(log, "");
  for (const tool of ["sha256sum", "md5sum", "openssl", "split"]) {
    const real = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => existsSync(p))!;
    writeFileSync(join(dir, tool), `#!/bin/bash\nprintf '%s\\n' ${tool} >>${JSON.stringify(log)}\nexec ${real} "$@"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  const r = spawnSync("bash", ["-c", `set -euo pipefail; source "$1"; ${script}`, "_", join(REPO, "scripts/lib/common.sh"), dir], {
    encoding: "utf8",
    env: { PATH: `${dir}:${process.env.PATH}`, ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return { out: r.stdout.trim(), starts: readFileSync(log, "utf8").split("\n").filter(Boolean) };
}

describe("multipart_etag: the part MD5s in one process", () => {
  for (const size of [PART, 3 * PART, 3 * PART + 12_345, 1000]) {
    it(`${size} bytes: the S3 ETag, no md5sum per part (split is the fallback, same ETag)`, () => {
      const bytes = randomBytes(size);
      const dir = tmp("etag-bytes");
      write(join(dir, "f"), bytes);
      const f = JSON.stringify(join(dir, "f"));
      const perl = runRecorded(`multipart_etag ${PART} <${f}`);
      expect(perl.out).toBe(s3Etag(bytes, PART));
      expect(perl.starts.filter((t) => t === "md5sum" || t === "split")).toEqual([]);
      const split = runRecorded(`multipart_etag ${PART} <${f}`, { COMFYUME_ETAG_TOOL: "split" });
      expect(split.out).toBe(s3Etag(bytes, PART));
    });
  }

  it("the restore's stream (one perl: staged file + part MD5s + bytes on to the SHA-256) gives the file, its SHA-256 and its ETag", () => {
    const bytes = randomBytes(2 * PART + 777);
    const dir = tmp("etag-stream");
    write(join(dir, "src"), bytes);
    const staged = join(dir, "staged");
    const r = runRecorded(
      `out=$({ perl -MDigest::MD5 -e "$COMFYUME_MD5_PARTS_PERL" ${PART} ${JSON.stringify(staged)} 1 <${JSON.stringify(join(dir, "src"))} | sha256_stream; } 3>&1); printf '%s\\n' "$out"`,
    );
    const lines = r.out.split("\n").map((l) => l.split(" ")[0]);
    expect(lines.sort()).toEqual([createHash("sha256").update(bytes).digest("hex"), s3Etag(bytes, PART)].sort());
    expect(readFileSync(staged).equals(bytes)).toBe(true);
  });
});

describe("hash_file: SHA-256 by openssl, MD5 beside it, one read", () => {
  it("gives both digests with openssl and no sha256sum start; coreutils when forced", () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const dir = tmp("hash-file");
    write(join(dir, "f"), bytes);
    const script = `hash_file ${JSON.stringify(join(dir, "f"))}; printf '%s %s\\n' "$HASHED_SHA256" "$HASHED_MD5"`;
    const want = `${createHash("sha256").update(bytes).digest("hex")} ${createHash("md5").update(bytes).digest("hex")}`;
    const fast = runRecorded(script);
    expect(fast.out).toBe(want);
    expect(fast.starts.filter((t) => t === "sha256sum")).toEqual([]);
    expect(fast.starts.filter((t) => t === "openssl").length).toBeGreaterThan(0);
    const slow = runRecorded(script, { COMFYUME_SHA256_TOOL: "sha256sum" });
    expect(slow.out).toBe(want);
    expect(slow.starts.filter((t) => t === "sha256sum")).toHaveLength(1);
  });

  it("a small file (SIZE under 1 MiB given) is hashed by sha256sum, whose start costs less than openssl's; same digests", () => {
    const bytes = randomBytes(20_000);
    const dir = tmp("hash-small");
    write(join(dir, "f"), bytes);
    const r = runRecorded(`hash_file ${JSON.stringify(join(dir, "f"))} ${bytes.length}; printf '%s %s\\n' "$HASHED_SHA256" "$HASHED_MD5"`);
    expect(r.out).toBe(`${createHash("sha256").update(bytes).digest("hex")} ${createHash("md5").update(bytes).digest("hex")}`);
    expect(r.starts.filter((t) => t === "openssl")).toEqual([]);
  });
});
