// curl in the pinned toolchain (scripts/host/toolchain.lock): seed-flat.sh and the day restore's flat
// fallback list buckets with `curl --aws-sigv4`, which needs curl 7.76 or newer. A machine made from the
// simulated cloud's stock image without curl gets it from the archive (the package mirror on loopback,
// here a copy of it that also carries the stock image's own curl package, repacked); one whose curl is
// older fails naming both versions and the fix. The lock used is the real one's curl line, so the test
// checks what the lock pins, without installing the rest of the toolchain.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPackageMirror, type PackageMirror } from "../../sim/local-cloud/package-mirror";
import { MACHINE_SCRIPTS, bootstrapCommand, bootstrapResult, stockMachine } from "./bootstrap-machine";

const ROOTFS = process.env.COMFYUME_SIM_ROOTFS ?? "";
const MIRROR_DIR = process.env.COMFYUME_SIM_MIRROR ?? "";
const ready = process.getuid?.() === 0 && existsSync(path.join(ROOTFS, "var/lib/dpkg/info/curl.list")) && existsSync(path.join(MIRROR_DIR, "Packages"));
if (!ready && process.env.CI) throw new Error("CI must run the curl bootstrap tests: root, COMFYUME_SIM_ROOTFS or COMFYUME_SIM_MIRROR is missing (run npm run setup as root)");

/** The real lock's curl line alone, as a lock file inside the machine (none: the lock lists no curl). */
const CURL_LOCK = "/tmp/curl.lock";
const WITH_CURL_LOCK = `grep -E '^(#|curl[[:space:]])' ${MACHINE_SCRIPTS}/host/toolchain.lock >${CURL_LOCK} || true; `;

/** The stock image's installed curl package rebuilt as a .deb (its files and control data from dpkg). */
function repackCurl(rootfs: string, outDir: string, work: string): string {
  const stanza = readFileSync(path.join(rootfs, "var/lib/dpkg/status"), "utf8").split("\n\n").find((s) => /^Package: curl$/m.test(s));
  if (!stanza) throw new Error("the stock image has no curl package");
  const version = /^Version: (.+)$/m.exec(stanza)![1];
  const stage = path.join(work, "curl-deb");
  mkdirSync(path.join(stage, "DEBIAN"), { recursive: true });
  writeFileSync(path.join(stage, "DEBIAN/control"), `${stanza.split("\n").filter((l) => !l.startsWith("Status:")).join("\n").trim()}\n`);
  for (const p of readFileSync(path.join(rootfs, "var/lib/dpkg/info/curl.list"), "utf8").split("\n").filter((l) => l && l !== "/.")) {
    const src = path.join(rootfs, p);
    if (!existsSync(src) && !lstatSync(src, { throwIfNoEntry: false })) continue; // docs left out of the minimal image
    if (lstatSync(src).isDirectory()) mkdirSync(path.join(stage, p), { recursive: true });
    else cpSync(src, path.join(stage, p), { verbatimSymlinks: true });
  }
  const deb = path.join(outDir, `curl_${version.replace(/:/g, "%3a")}_amd64.deb`);
  const r = spawnSync("dpkg-deb", ["--root-owner-group", "--build", stage, deb], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dpkg-deb failed: ${r.stderr}`);
  return version;
}

/** Packages, Packages.gz and Release of the flat repository DIR, rebuilt as build-image.sh builds them. */
function reindex(dir: string): void {
  rmSync(path.join(dir, "Release"), { force: true });
  const r = spawnSync("bash", ["-c", "apt-ftparchive packages . >Packages && gzip -9knf Packages && apt-ftparchive release . >Release.new && mv Release.new Release"], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`apt-ftparchive failed: ${r.stderr}`);
}

describe.runIf(ready)("curl in the toolchain lock (seed-flat.sh needs --aws-sigv4: curl >= 7.76)", () => {
  let dir: string;
  let mirror: PackageMirror;
  let curlVersion: string;
  const machine = (name: string) => stockMachine(name, { dir: path.join(dir, name), rootfs: ROOTFS, sourcesLine: mirror.sourcesLine });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "comfyume-bootstrap-curl-"));
    const repo = path.join(dir, "mirror");
    cpSync(MIRROR_DIR, repo, { recursive: true });
    curlVersion = repackCurl(ROOTFS, repo, dir);
    reindex(repo);
    mirror = await startPackageMirror({ dir: repo, host: "127.0.103.5" });
  });
  afterAll(async () => {
    await mirror?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a machine without curl gets it from the archive, and the bootstrap reports its version", async () => {
    const host = machine("no-curl");
    const removed = await host.run("dpkg --remove --force-depends curl >/dev/null 2>&1; command -v curl || echo no-curl");
    expect(removed.stdout.trim()).toBe("no-curl");
    const r = await host.run(`${WITH_CURL_LOCK}${bootstrapCommand("--lock", CURL_LOCK)}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/missing or below pin: curl \(curl >= 7\.76\): not installed or does not run/);
    const result = bootstrapResult(r.stdout);
    expect(result?.how).toBe("downloaded");
    expect(result?.tools.curl).toBe(curlVersion.replace(/^\d+:/, "").replace(/[-+~].*$/, ""));
    expect(mirror.requests().filter((p) => /curl_.*\.deb$/.test(p))).toHaveLength(1);
    expect((await host.run("curl --version | head -n 1")).stdout).toMatch(/^curl 7\.\d+\.\d+/);
  }, 300_000);

  it("a curl older than the pin (no --aws-sigv4) is named with both versions and the fix", async () => {
    const host = machine("old-curl");
    const fake = "printf '#!/bin/sh\\necho \"curl 7.74.0 (x86_64-pc-linux-gnu) libcurl/7.74.0\"\\n' >/usr/local/bin/curl && chmod +x /usr/local/bin/curl; ";
    const r = await host.run(`${fake}${WITH_CURL_LOCK}${bootstrapCommand("--lock", CURL_LOCK, "--no-download")}`);
    expect(r.code).toBe(1);
    const last = r.stderr.trimEnd().split("\n").pop() ?? "";
    expect(last).toContain("curl (curl >= 7.76): found 7.74.0");
    expect(last).toMatch(/Fix: run it without --no-download/);
  }, 120_000);
});
