// The restore's one hasher (sha256_batch, sha256_stream) uses openssl where it works (the CPU's SHA
// instructions: several times less CPU than coreutils' sha256sum, and the restore hashes every byte
// it writes) and coreutils otherwise: both give the same "sha256<TAB>path" lines, and both leave an
// unreadable path out (the restore treats a path without a hash as failed).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTmp, REPO, tmp, write } from "./helpers";

afterAll(cleanupTmp);

function hashWith(tool: string, files: string[]): { out: string; which: string } {
  const dir = tmp("hasher");
  write(join(dir, "list"), files.join("\0") + "\0");
  const script = `set -euo pipefail; source "$1"; sha256_batch "$2/list" "$2/out"; cat "$2/out"; sha256_openssl && echo WHICH=openssl || echo WHICH=coreutils; printf 'abc' | sha256_stream`;
  const r = spawnSync("bash", ["-c", script, "_", join(REPO, "scripts/lib/common.sh"), dir], { encoding: "utf8", env: { PATH: process.env.PATH!, COMFYUME_SHA256_TOOL: tool } });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines.pop()!.split(/\s/)[0]).toBe(createHash("sha256").update("abc").digest("hex"));
  return { which: lines.pop()!, out: lines.join("\n") };
}

describe("the restore's hasher", () => {
  it("openssl and coreutils give the same lines; an unreadable path is left out", () => {
    const dir = tmp("hasher-files");
    const files = ["plain.bin", "with space.png", "back\\slash.txt", "-dash"].map((n, i) => {
      write(join(dir, n), `content ${i}\n`.repeat(1000 * i + 1));
      return join(dir, n);
    });
    const all = [...files, join(dir, "missing")];
    const expected = files.map((f) => `${createHash("sha256").update(readFileSync(f)).digest("hex")}\t${f}`).join("\n");
    const viaOpenssl = hashWith("openssl", all);
    const viaCoreutils = hashWith("sha256sum", all);
    expect(viaOpenssl.which).toBe("WHICH=openssl");
    expect(viaCoreutils.which).toBe("WHICH=coreutils");
    expect(viaOpenssl.out).toBe(expected);
    expect(viaCoreutils.out).toBe(expected);
  });
});
