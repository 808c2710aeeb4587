// Restore refuses unsafe paths (issue 11, item 3): manifest entries that are absolute, contain
// "..", are empty or malformed, or lead through a symlink out of the target directory, and
// snapshot tarballs whose members would leave their staging directory. Real rclone against a
// real S3 endpoint on loopback; real GNU tar.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, rclone, REPO, run, sha256, tmp, treeHashes, useS3, write } from "./helpers";

const s3 = useS3();

const MODELS = "comfyume-model-vault-backups";
const CACHE = "comfyume-cache-backups";
const HEADER = "# comfyume-manifest v1: sha256\tmd5\tsize\tpath";
let manifests = 0;

/** Uploads DATA as a content-addressed object and returns its manifest line for PATH. */
async function object(bucket: string, prefix: string, data: Buffer, path: string): Promise<string> {
  const sha = createHash("sha256").update(data).digest("hex");
  const md5 = createHash("md5").update(data).digest("hex");
  const r = await rclone(s3, ["rcat", `r2:${bucket}/${prefix}/objects/${sha.slice(0, 2)}/${sha}`], data);
  expect(r.code, r.stderr).toBe(0);
  return `${sha}\t${md5}\t${data.length}\t${path}`;
}

/** Uploads a manifest made of LINES (newest by name) and returns its key. */
async function manifest(bucket: string, prefix: string, lines: string[]): Promise<string> {
  manifests += 1;
  const key = `${prefix}/manifests/2030-01-01T${String(manifests).padStart(6, "0")}Z.tsv`;
  const r = await rclone(s3, ["rcat", `r2:${bucket}/${key}`], `${HEADER}\n${lines.join("\n")}\n`);
  expect(r.code, r.stderr).toBe(0);
  return key;
}

function seed(root: string, sfs: string, key: string) {
  return run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--manifest", `models=${key}`, "--min-free-mb", "1"], {
    env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" },
    input: r2Secrets(s3),
  });
}

describe("restore refuses unsafe manifest entries", () => {
  const outsideFile = (root: string) => join(root, "outside/abs.safetensors");
  it.each([
    ["a '../' entry", () => "../escape.safetensors", /'\.\.' component/],
    ["a '..' deeper in the path", () => "checkpoints/../../escape.safetensors", /'\.\.' component/],
    ["an absolute entry", (root: string) => outsideFile(root), /absolute path/],
    ["an empty entry", () => "", /empty path/],
    ["a control character", () => "loras/a\rb.safetensors", /control character/],
    ["a newline (the rest of the path on its own line)", () => "loras/first\nhalf.safetensors", /not a manifest line/],
  ])("%s: nothing of the manifest is written, the message names the key, the entry and why", async (_what, entry, why) => {
    const root = tmp("unsafe");
    const sfs = join(root, "mnt/sfs");
    mkdirSync(join(root, "outside"), { recursive: true });
    write(join(sfs, ".keep"), "");
    const good = await object(MODELS, "models", randomBytes(2048), "loras/good.safetensors");
    const bad = await object(MODELS, "models", randomBytes(1024), entry(root));
    const key = await manifest(MODELS, "models", [good, bad]);
    const r = await seed(root, sfs, key);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`r2:${MODELS}/${key}`);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toMatch(/unsafe manifest entry/);
    expect(r.stderr).toMatch(/older manifest/);
    // Validated before anything is fetched or written: not even the good entry, no staging.
    expect(existsSync(join(sfs, "models"))).toBe(false);
    expect(existsSync(join(sfs, "escape.safetensors"))).toBe(false);
    expect(readdirSync(join(root, "outside"))).toEqual([]);
  });

  it("refuses an entry that would be written through a symlinked directory leading out of DEST", async () => {
    const root = tmp("unsafe");
    const sfs = join(root, "mnt/sfs");
    const outside = join(root, "outside");
    mkdirSync(outside, { recursive: true });
    mkdirSync(join(sfs, "models"), { recursive: true });
    symlinkSync(outside, join(sfs, "models/checkpoints"));
    const good = await object(MODELS, "models", randomBytes(2048), "loras/good.safetensors");
    const bad = await object(MODELS, "models", randomBytes(1024), "checkpoints/evil.safetensors");
    const key = await manifest(MODELS, "models", [good, bad]);
    const r = await seed(root, sfs, key);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`r2:${MODELS}/${key}`);
    expect(r.stderr).toMatch(/'checkpoints\/evil\.safetensors'.*symlink.*outside/);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(sfs, "models/loras"))).toBe(false);
  });

  it("still restores through symlinks that stay inside DEST, into a DEST that is itself a symlink", async () => {
    const root = tmp("safe");
    const sfs = join(root, "mnt/sfs");
    const real = join(root, "real-models");
    mkdirSync(join(real, "vae-v2"), { recursive: true });
    mkdirSync(sfs, { recursive: true });
    symlinkSync(real, join(sfs, "models"));
    symlinkSync("vae-v2", join(real, "vae"));
    const a = randomBytes(2048);
    const b = randomBytes(1024);
    const key = await manifest(MODELS, "models", [await object(MODELS, "models", a, "loras/good.safetensors"), await object(MODELS, "models", b, "vae/v.safetensors")]);
    const r = await seed(root, sfs, key);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(join(real, "vae-v2/v.safetensors"))).toBe(createHash("sha256").update(b).digest("hex"));
    expect(sha256(join(real, "loras/good.safetensors"))).toBe(createHash("sha256").update(a).digest("hex"));
  });

  it("check_tree_against_manifest refuses the same entries instead of reading outside DIR", () => {
    const root = tmp("check");
    const dir = join(root, "dir");
    mkdirSync(dir);
    write(join(root, "secret.txt"), "outside\n");
    const sha = createHash("sha256").update("outside\n").digest("hex");
    const m = join(root, "m.tsv");
    write(m, `${HEADER}\n${sha}\t${"0".repeat(32)}\t8\t../secret.txt\n`);
    const r = spawnSync("bash", ["-c", `source '${REPO}/scripts/lib/common.sh'; check_tree_against_manifest "$1" "$2"`, "check", dir, m], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`unsafe manifest entry in ${m}`);
    expect(r.stderr).toMatch(/'\.\.\/secret\.txt'.*'\.\.' component/);
  });

  it("restore-instance refuses an unsafe cache manifest from R2 before writing into the SFS", async () => {
    const root = tmp("ri");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const key = await manifest(CACHE, "cache", [
      await object(CACHE, "cache", Buffer.from("2030-01-01T000000Z\n"), "backups/verda-worker/latest"),
      await object(CACHE, "cache", randomBytes(512), "../../escape.tar.gz"),
    ]);
    const r = await run("restore-instance.sh", ["--sfs", sfs, "--r2-endpoint", s3.endpoint, ...skipAllBut("project")], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" },
      input: r2Secrets(s3),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED in step 'snapshot': unsafe manifest entry/);
    expect(r.stderr).toContain(`r2:${CACHE}/${key}`);
    expect(existsSync(join(sfs, "cache"))).toBe(false);
    expect(existsSync(join(root, "mnt/escape.tar.gz"))).toBe(false);
  });
});

function skipAllBut(keep: string): string[] {
  return ["tailscale", "ssh-host-keys", "project", "config", "worker-image", "worker", "health-comfyui", "health-redis"]
    .filter((s) => s !== keep)
    .flatMap((s) => ["--skip", s]);
}

describe("restore-instance unpacks snapshot tarballs only inside their staging directory", () => {
  /** A snapshot whose project.tar.gz holds MEMBERS ([name] file, [name, "sym", target] symlink), made with Python's tarfile. */
  function snapshotWith(root: string, members: string[][]): string {
    const sfs = join(root, "mnt/sfs");
    const snap = join(sfs, "cache/backups/verda-worker/2030-01-01T000000Z");
    mkdirSync(snap, { recursive: true });
    write(join(sfs, "cache/backups/verda-worker/latest"), "2030-01-01T000000Z\n");
    const py = `
import io, sys, tarfile, json
with tarfile.open(sys.argv[1], "w:gz") as t:
    for m in json.loads(sys.argv[2]):
        ti = tarfile.TarInfo(m[0])
        if len(m) > 1:
            ti.type, ti.linkname = tarfile.SYMTYPE, m[2]
            t.addfile(ti)
        else:
            ti.size = 2
            t.addfile(ti, io.BytesIO(b"x\\n"))
`;
    const r = spawnSync("python3", ["-c", py, join(snap, "project.tar.gz"), JSON.stringify([["./README.md"], ...members])], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(spawnSync("sh", ["-c", "sha256sum project.tar.gz > MANIFEST.sha256"], { cwd: snap }).status).toBe(0);
    return sfs;
  }

  it.each([
    ["a '../' member", (o: string) => [["../escape.txt"]], /unsafe member '\.\.\/escape\.txt'/],
    ["an absolute member", (o: string) => [[join(o, "abs.txt")]], /unsafe member '\/.*abs\.txt'.*absolute/],
    ["a symlink out, then a file through it", (o: string) => [["link", "sym", o], ["link/evil.txt"]], /cannot unpack/],
  ])("%s: refused, nothing written outside, the project untouched", async (_what, members, why) => {
    const root = tmp("tar");
    const outside = join(root, "outside");
    mkdirSync(outside);
    const sfs = snapshotWith(root, members(outside));
    const project = join(root, "home/dev/comfyume");
    write(join(project, "README.md"), "mine\n");
    const before = treeHashes(project);
    const r = await run("restore-instance.sh", ["--sfs", sfs, ...skipAllBut("project")], { env: { COMFYUME_ROOT: root } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED in step 'project'/);
    expect(r.stderr).toMatch(why);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(root, "escape.txt"))).toBe(false);
    expect(treeHashes(project)).toEqual(before);
  });
});
