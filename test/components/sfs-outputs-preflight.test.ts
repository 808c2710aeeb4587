// The serverless day's outputs hook, its create run for real in bash: it proves the app host mounts the
// month's SFS (the marker <sfs>/.comfyume/sfs-id names the month's SFS id) before the day is declared up, and
// makes <sfs>/outputs; otherwise it fails naming the cause and the fix, and creates nothing.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sfsOutputsPreflight, type SfsOutputsNightlyArgs } from "../../components/app-host-backup";
import { repoRoot } from "../support/pulumi-cli";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function args(sfsMount: string): SfsOutputsNightlyArgs {
  return {
    target: { host: "203.0.113.20", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA", privateKey: "k", dialErrorLimit: 1, perDialTimeout: 1 },
    r2: { endpoint: "https://r2.example", accessKeyId: "a", secretAccessKey: "s", bucket: "b" },
    scriptsDir: path.join(repoRoot, "scripts"),
    hostEnv: {},
    backupSeconds: 60,
    shrink: { accept: [] },
    sfsMount,
    sfsId: "sfs-0001",
    monthStack: "workshop-month",
  };
}

const sfs = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "sfs-outputs-"));
  dirs.push(d);
  return d;
};
const run = (command: string) => spawnSync("bash", ["-c", command], { encoding: "utf8", timeout: 60_000 });

describe("sfs-outputs-backup-before-delete: create", () => {
  it("fails naming the SFS and the fix when the app host does not mount the month's SFS, creating nothing", () => {
    const mount = sfs();
    fs.mkdirSync(path.join(mount, ".comfyume"));
    fs.writeFileSync(path.join(mount, ".comfyume", "sfs-id"), "sfs-other\n");
    const r = run(sfsOutputsPreflight(args(mount), "sfs-0001"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`does not mount the month's SFS sfs-0001 at ${mount} (its marker reads 'sfs-other')`);
    expect(r.stderr).toContain("scripts/pulumi up --refresh --stack workshop-month");
    expect(fs.existsSync(path.join(mount, "outputs"))).toBe(false);
    // Nothing mounted at all: no marker.
    const empty = run(sfsOutputsPreflight(args(sfs()), "sfs-0001"));
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain("(its marker reads 'none')");
  });

  it("makes <sfs>/outputs on the month's SFS", () => {
    const mount = sfs();
    fs.mkdirSync(path.join(mount, ".comfyume"));
    fs.writeFileSync(path.join(mount, ".comfyume", "sfs-id"), "sfs-0001\n");
    const r = run(sfsOutputsPreflight(args(mount), "sfs-0001"));
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(path.join(mount, "outputs")).isDirectory()).toBe(true);
  });
});
