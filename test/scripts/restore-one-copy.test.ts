// The restore's checks live in one place each (review of issue 13): one function hashes a list of
// files in batches (sha256_batch), one function links verified staged files into place. Two
// near-copies drift apart (a fix lands in one of them); this reads the whole shared library
// (scripts/lib/*.sh) and names every function that does either job.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTmp, REPO, sha256, tmp, write } from "./helpers";

/** Shell function name -> body, for every top-level `name() {` ... `}` in FILE. */
function functions(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let name = "";
  let body: string[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const start = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{/.exec(line);
    if (start) {
      name = start[1];
      body = [line];
      if (line.trimEnd().endsWith("}") && !line.trimEnd().endsWith("{")) (out.set(name, line), (name = ""));
      continue;
    }
    if (!name) continue;
    body.push(line);
    if (line === "}") (out.set(name, body.join("\n")), (name = ""));
  }
  return out;
}

afterAll(cleanupTmp);
const LIB = join(REPO, "scripts/lib");
const lib = new Map(readdirSync(LIB).filter((f) => f.endsWith(".sh")).sort().flatMap((f) => [...functions(join(LIB, f))]));
const doing = (re: RegExp) => [...lib].filter(([, body]) => re.test(body)).map(([n]) => n);

describe("the restore's hashing and installing exist once", () => {
  it("only sha256_batch hashes a batch of files (sha256sum -z over a list)", () => {
    expect(lib.has("sha256_batch")).toBe(true);
    expect(doing(/sha256sum\s+-z\b/)).toEqual(["sha256_batch"]);
  });

  it("only one function hard-links a verified staged file under its final name", () => {
    // perl's `link $staged, $target` or `ln -- "$staged" "$target"`: the same job, written twice.
    expect(doing(/\blink\s+\$staged\b|\bln\s+(-f\s+)?--\s+"\$staged"/)).toHaveLength(1);
  });

  // /dev/shm is another filesystem than the temp dir here: a link from it fails (EXDEV).
  it.skipIf(!existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmp("fs")).dev)(
    "where a link fails, the installer copies, hashes the copy and only then renames it; a wrong copy is not placed",
    () => {
      const far = mkdtempSync("/dev/shm/comfyume-install-");
      try {
        const dir = tmp("install");
        write(join(far, "a"), randomBytes(5000));
        write(join(far, "b"), randomBytes(100));
        write(join(dir, "staging/c"), randomBytes(300));
        const shaA = sha256(join(far, "a"));
        const list = [join(far, "a"), join(dir, "t/a"), shaA, join(far, "b"), join(dir, "t/b"), shaA, join(dir, "staging/c"), join(dir, "t/c"), sha256(join(dir, "staging/c"))];
        write(join(dir, "list"), list.join("\0") + "\0");
        write(join(dir, "t/.keep"), "");
        const r = spawnSync("bash", ["-c", 'source "$1"; r2_install_staged "$2"; echo "failed=$R2_INSTALL_FAILED"', "_", join(REPO, "scripts/lib/common.sh"), join(dir, "list")], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe("failed=1");
        expect(r.stderr).toContain(`INSTALL FAILED: could not place ${join(dir, "t/b")}`);
        expect(sha256(join(dir, "t/a"))).toBe(shaA); // copied across filesystems, checked
        expect(statSync(join(dir, "t/c")).ino).toBe(statSync(join(dir, "staging/c")).ino); // linked
        expect(readdirSync(join(dir, "t")).sort()).toEqual([".keep", "a", "c"]); // nothing half-written
      } finally {
        rmSync(far, { recursive: true, force: true });
      }
    },
  );
});
