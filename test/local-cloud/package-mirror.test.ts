// The package mirror (sim/local-cloud/package-mirror.ts) with real HTTP on loopback: it serves the
// flat apt repository's files, refuses anything outside it, and requests() lists what was served.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startPackageMirror } from "../../sim/local-cloud/package-mirror";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function repo(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "comfyume-mirror-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "Packages"), "Package: jq\nVersion: 1.6\nFilename: ./jq_1.6_amd64.deb\n\n");
  writeFileSync(path.join(dir, "jq_1.6_amd64.deb"), "DEB-BYTES");
  mkdirSync(path.join(dir, "sub"));
  writeFileSync(path.join(dir, "sub", "secret"), "not served");
  // A file next to the repository: reachable only by leaving it.
  const outside = path.join(path.dirname(dir), `outside-${path.basename(dir)}`);
  writeFileSync(outside, "outside");
  dirs.push(outside);
  return dir;
}

describe("package mirror", () => {
  it("serves the repository's files on the given loopback address and lists each request", async () => {
    const dir = repo();
    const mirror = await startPackageMirror({ dir, host: "127.91.0.3" });
    try {
      expect(mirror.url).toMatch(/^http:\/\/127\.91\.0\.3:\d+\/$/);
      expect(mirror.sourcesLine).toBe(`deb [trusted=yes] ${mirror.url} ./`);
      expect(mirror.requests()).toEqual([]);
      const packages = await fetch(`${mirror.url}./Packages`);
      expect(packages.status).toBe(200);
      expect(await packages.text()).toContain("Package: jq");
      const deb = await fetch(`${mirror.url}jq_1.6_amd64.deb`);
      expect(await deb.text()).toBe("DEB-BYTES");
      expect(mirror.requests()).toEqual(["/Packages", "/jq_1.6_amd64.deb"]);
    } finally {
      await mirror.close();
    }
  });

  it("answers 404 for missing files, subdirectories and paths leaving the repository, and does not count them", async () => {
    const dir = repo();
    const mirror = await startPackageMirror({ dir, host: "127.91.0.3" });
    try {
      for (const p of ["Packages.xz", "sub/secret", "..%2F" + "outside-" + path.basename(dir), "%2e%2e/etc/passwd", ""]) {
        const r = await fetch(`${mirror.url}${p}`);
        expect(r.status, p).toBe(404);
      }
      const post = await fetch(`${mirror.url}Packages`, { method: "POST", body: "x" });
      expect(post.status).toBe(405);
      expect(mirror.requests()).toEqual([]);
    } finally {
      await mirror.close();
    }
  });

  it("refuses a directory that is not an apt repository, naming the fix", async () => {
    const empty = mkdtempSync(path.join(tmpdir(), "comfyume-mirror-empty-"));
    dirs.push(empty);
    await expect(startPackageMirror({ dir: empty, host: "127.91.0.3" })).rejects.toThrow(/no Packages index.*build-image\.sh/);
    await expect(startPackageMirror({ dir: path.join(empty, "nope"), host: "127.91.0.3" })).rejects.toThrow(/not a directory.*npm run setup/);
  });
});
