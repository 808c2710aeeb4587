// Seeding an SFS from the workshop's own flat R2 buckets (issue 14, item 4): models as
// `<model_type>/<file>.safetensors` (no manifests), landing under `models/shared/<model_type>/`.
// seed-sfs.sh --layout flat lists the bucket, copies, hashes every file after the copy and checks it
// against the listing (size, and the MD5 ETag, single-part or multipart), and keeps the manifest it built
// under <sfs>/.comfyume/ so the next run reads only the listing. Real bash, rclone, curl and versitygw.
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO, r2Secrets, rclone, run, tmp, treeHashes, useS3, write, type S3 } from "./helpers";

const s3 = useS3("127.0.103.1");
const MODELS = "comfyume-model-vault-backups";

/** The key of every object read (GetObject, HeadObject) the server answered for BUCKET since it started. */
function objectReads(s: S3, bucket: string): string[] {
  const log = readFileSync(join(s.dir, "access.log"), "utf8").split("\n");
  return log.filter((l) => l.includes(` ${bucket} `) && /\ss3_(GetObject|HeadObject)\s/.test(l)).map((l) => l.split(/\s+/)[8] ?? "");
}

/** Uploads local files to the flat bucket the way the workshop did (rclone; big ones multipart, 5 MiB parts). */
async function upload(files: Record<string, Buffer | string>, bucket = MODELS): Promise<void> {
  const src = tmp("flat-src");
  for (const [key, body] of Object.entries(files)) write(join(src, key), body);
  const r = await rclone(s3, ["copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, `r2:${bucket}`]);
  expect(r.code, r.stderr).toBe(0);
}

function seed(sfs: string, extra: string[] = []) {
  return run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--layout", "flat", "--min-free-mb", "1", ...extra], {
    env: { COMFYUME_ROOT: tmp("flat-root"), RCLONE_RETRIES: "1" },
    input: r2Secrets(s3),
  });
}

const bigModel = Buffer.alloc(12 * 1048576 + 333, 7); // 3 parts of 5 MiB: a multipart ETag "<md5>-3"
const MODEL_SET: Record<string, Buffer | string> = {
  "checkpoints/ltx-2-19b.safetensors": bigModel,
  "text_encoders/gemma-3.safetensors": "text encoder bytes\n".repeat(300),
  "vae/ltx-vae.safetensors": "vae bytes\n".repeat(100),
  "loras/camera-orbit.safetensors": "lora bytes\n".repeat(50),
  "latent_upscale_models/x2.safetensors": "upscaler\n",
};

describe("seed-sfs --layout flat (models from a flat bucket)", () => {
  beforeAll(() => upload(MODEL_SET));

  it("seeding from a flat bucket verifies every file and a second seed copies nothing", async () => {
    const sfs = tmp("flat-sfs");
    const first = await seed(sfs);
    expect(first.code, first.stderr).toBe(0);
    const shared = join(sfs, "models/shared");
    const got = treeHashes(shared, /^\.comfyume/);
    expect(Object.keys(got).sort()).toEqual(Object.keys(MODEL_SET).sort());
    // Every file was checked against the listing's ETag (one multipart, four single-part).
    expect(first.stderr).toMatch(/verified 5 file\(s\)/);
    expect(first.stderr).toMatch(/multipart ETag .*checkpoints\/ltx-2-19b\.safetensors.*part size 5242880/);
    const kept = readFileSync(join(sfs, ".comfyume/flat-models.tsv"), "utf8");
    expect(kept).toMatch(/^# comfyume-flat-manifest v1/);
    const rows = kept.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split("\t"));
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(MODEL_SET).sort());
    for (const [path, size, etag, sha] of rows) {
      expect(Number(size)).toBe(Buffer.byteLength(MODEL_SET[path]!));
      expect(sha).toBe(got[path]);
      expect(etag).toMatch(path.startsWith("checkpoints/") ? /^[0-9a-f]{32}-3$/ : /^[0-9a-f]{32}$/);
    }

    const readsBefore = objectReads(s3, MODELS).length;
    expect(readsBefore).toBeGreaterThanOrEqual(5);
    const second = await seed(sfs);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/0 fetched, 5 unchanged/);
    expect(objectReads(s3, MODELS).length).toBe(readsBefore);
    expect(treeHashes(shared, /^\.comfyume/)).toEqual(got);
  });

  it("refuses a corrupted object (single-part and multipart), naming it; the others are installed", async () => {
    const bucket = MODELS;
    const sfs = tmp("flat-sfs");
    s3.corruptObject(bucket, "vae/ltx-vae.safetensors");
    s3.corruptObject(bucket, "checkpoints/ltx-2-19b.safetensors");
    const r = await seed(sfs);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`r2:${bucket}/vae/ltx-vae.safetensors`);
    expect(r.stderr).toContain(`r2:${bucket}/checkpoints/ltx-2-19b.safetensors`);
    expect(r.stderr).toMatch(/2 object\(s\) failed/);
    expect(r.stderr).toMatch(/re-upload/i);
    const shared = join(sfs, "models/shared");
    expect(existsSync(join(shared, "vae/ltx-vae.safetensors"))).toBe(false);
    expect(existsSync(join(shared, "checkpoints/ltx-2-19b.safetensors"))).toBe(false);
    expect(existsSync(join(shared, "loras/camera-orbit.safetensors"))).toBe(true);
    // The kept manifest lists only what was verified.
    const kept = readFileSync(join(sfs, ".comfyume/flat-models.tsv"), "utf8");
    expect(kept).not.toContain("vae/ltx-vae.safetensors");
    // Heal the bucket for the next tests (as the operator would: upload the file again).
    await rclone(s3, ["deletefile", `r2:${bucket}/vae/ltx-vae.safetensors`]);
    await rclone(s3, ["deletefile", `r2:${bucket}/checkpoints/ltx-2-19b.safetensors`]);
    await upload({ "vae/ltx-vae.safetensors": MODEL_SET["vae/ltx-vae.safetensors"]!, "checkpoints/ltx-2-19b.safetensors": bigModel });
  });

  it("picks up a new object and a changed one on the next seed (only those are read); a locally altered file is refused, then repaired", async () => {
    const sfs = tmp("flat-sfs");
    expect((await seed(sfs)).code).toBe(0);
    await upload({ "controlnet/depth.safetensors": "depth controlnet\n", "loras/camera-orbit.safetensors": "a new version of the lora\n" });
    const before = objectReads(s3, MODELS).length;
    const r = await seed(sfs);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 fetched, 4 unchanged/);
    const reads = objectReads(s3, MODELS).slice(before);
    expect(new Set(reads), reads.join(" ")).toEqual(new Set(["controlnet/depth.safetensors", "loras/camera-orbit.safetensors"]));
    const shared = join(sfs, "models/shared");
    expect(readFileSync(join(shared, "loras/camera-orbit.safetensors"), "utf8")).toBe("a new version of the lora\n");
    expect(readFileSync(join(shared, "controlnet/depth.safetensors"), "utf8")).toBe("depth controlnet\n");

    appendFileSync(join(shared, "vae/ltx-vae.safetensors"), "x");
    const altered = await seed(sfs);
    expect(altered.code).toBe(1);
    expect(altered.stderr).toContain(join(shared, "vae/ltx-vae.safetensors"));
    expect(altered.stderr).toMatch(/--repair/);
    const repaired = await seed(sfs, ["--repair"]);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(readFileSync(join(shared, "vae/ltx-vae.safetensors"), "utf8")).toBe(MODEL_SET["vae/ltx-vae.safetensors"]);
    expect(readdirSync(join(shared, "vae")).some((n) => n.startsWith("ltx-vae.safetensors.corrupt-"))).toBe(true);
  });

  it("adopts files already on the SFS that match the listing without copying them", async () => {
    const sfs = tmp("flat-sfs");
    write(join(sfs, "models/shared/vae/ltx-vae.safetensors"), MODEL_SET["vae/ltx-vae.safetensors"]!);
    write(join(sfs, "models/shared/text_encoders/gemma-3.safetensors"), "not the bucket's bytes");
    const before = objectReads(s3, MODELS).length;
    const r = await seed(sfs);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(sfs, "models/shared/text_encoders/gemma-3.safetensors"));
    expect(r.stderr).toMatch(/--repair/);
    const reads = objectReads(s3, MODELS).slice(before);
    expect(reads).toContain("checkpoints/ltx-2-19b.safetensors");
    expect(reads).not.toContain("vae/ltx-vae.safetensors");
    expect(readFileSync(join(sfs, "models/shared/text_encoders/gemma-3.safetensors"), "utf8")).toBe("not the bucket's bytes");
  });

  it("keeps an append-only copy of the manifest in the bucket under .comfyume/ when asked, and never lists it as a model", async () => {
    const sfs = tmp("flat-sfs");
    const r = await seed(sfs, ["--publish-manifest"]);
    expect(r.code, r.stderr).toBe(0);
    const ls = await rclone(s3, ["lsf", "-R", "--files-only", `r2:${MODELS}/.comfyume/flat-manifests`]);
    expect(ls.stdout.trim().split("\n")).toHaveLength(1);
    const again = await seed(sfs, ["--publish-manifest"]);
    expect(again.code, again.stderr).toBe(0);
    const ls2 = await rclone(s3, ["lsf", "-R", "--files-only", `r2:${MODELS}/.comfyume/flat-manifests`]);
    expect(ls2.stdout).toBe(ls.stdout);
    expect(again.stderr).toMatch(/0 fetched, 6 unchanged/);
    expect(existsSync(join(sfs, "models/shared/.comfyume"))).toBe(false);
  });

  it("seeds the backups' hash state: the first night after a flat seed reads none of the models it verified", async () => {
    const sfs = tmp("flat-sfs");
    const seeded = await seed(sfs);
    expect(seeded.code, seeded.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1100)); // a new second: a new dated manifest key
    const night = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--shrink-tolerance", "1"], {
      env: { COMFYUME_ROOT: tmp("night-root"), RCLONE_RETRIES: "1" },
      input: r2Secrets(s3),
      timeoutMs: 120_000,
    });
    expect(night.code, night.stderr).toBe(0);
    const files = Object.keys(treeHashes(join(sfs, "models/shared"))).length;
    expect(night.stderr).toMatch(new RegExp(`hashed 0 file\\(s\\), 0 bytes; reused ${files} file\\(s\\)`));
    // The night's own objects and manifest sit beside theirs, and a flat seed still leaves them out.
    const again = await seed(sfs);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`0 fetched, ${files} unchanged`));
  }, 180_000);
});

describe("seed-sfs --layout flat beside the project's own backups in the same bucket", () => {
  it("never takes backup-to-r2.sh's models/objects/ or models/manifests/ for a model type", async () => {
    await upload({ "models/objects/ab/ab12": "content-addressed object\n", "models/manifests/2026-01-01T000000Z.tsv": "# comfyume-manifest v2\n", "vae/other.safetensors": "vae\n" });
    const sfs = tmp("flat-sfs");
    const r = await seed(sfs);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(sfs, "models/shared/models"))).toBe(false);
    expect(readFileSync(join(sfs, ".comfyume/flat-models.tsv"), "utf8")).not.toContain("models/objects");
  });
});

describe("seed-sfs --layout flat: a server without part requests, secrets, R2 unreachable", () => {
  /** A curl in front of the real one: records its command lines and environment; DROP_PART=1 strips
   * ?partNumber=1 (a server that does not answer part requests then gives the whole object's headers). */
  function curlShim(dropPart: boolean) {
    const dir = tmp("curl-shim");
    const log = join(dir, "calls.log");
    const real = spawnSync("bash", ["-c", "command -v curl"], { encoding: "utf8" }).stdout.trim();
    write(
      join(dir, "bin/curl"),
      `#!/usr/bin/env bash\nprintf 'ARGV %s\\n' "$*" >>'${log}'\nenv >>'${log}'\nargs=()\nfor a in "$@"; do ${dropPart ? 'a=${a/\\?partNumber=1/}; ' : ""}args+=("$a"); done\nexec '${real}' "\${args[@]}"\n`,
      0o755,
    );
    return { env: { PATH: `${join(dir, "bin")}:${process.env.PATH}` }, calls: () => readFileSync(log, "utf8") };
  }

  function seedWith(sfs: string, env: Record<string, string>, extra: string[] = []) {
    return run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--layout", "flat", "--min-free-mb", "1", ...extra], {
      env: { COMFYUME_ROOT: tmp("flat-root"), RCLONE_RETRIES: "1", ...env },
      input: r2Secrets(s3),
    });
  }

  it("infers the part size of a multipart object from its size and part count, and still refuses a damaged one", async () => {
    const key = "checkpoints/inferred-parts.safetensors";
    const body = Buffer.alloc(12 * 1048576 + 77, 3);
    await upload({ [key]: body });
    const shim = curlShim(true);
    const r = await seedWith(tmp("flat-sfs"), shim.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/multipart ETag of r2:comfyume-model-vault-backups\/checkpoints\/inferred-parts\.safetensors verified: [0-9a-f]{32}-3, part size 5242880 \(inferred/);
    s3.corruptObject(MODELS, key);
    const bad = await seedWith(tmp("flat-sfs"), shim.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`ETAG MISMATCH: r2:${MODELS}/${key}`);
    expect(bad.stderr).toMatch(/tried part sizes 5242880 6291456/);
    await rclone(s3, ["deletefile", `r2:${MODELS}/${key}`]);
  });

  it("never puts the R2 keys on curl's command line or in its environment", async () => {
    const shim = curlShim(false);
    const r = await seedWith(tmp("flat-sfs"), shim.env);
    expect(r.code, r.stderr).toBe(0);
    const calls = shim.calls();
    expect(calls).toContain("ARGV ");
    expect(calls).not.toContain(s3.secret);
    expect(calls).not.toContain(s3.keyId);
    expect(r.stderr).not.toContain(s3.secret);
  });

  it("a wrong key fails at the listing, before anything is copied, naming the bucket, the cause and the fix", async () => {
    const sfs = tmp("flat-sfs");
    const r = await run("seed-sfs.sh", ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--layout", "flat"], {
      env: { COMFYUME_ROOT: tmp("flat-root"), RCLONE_RETRIES: "1" },
      input: `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=wrong-secret\n`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot list r2:${MODELS}/ at .*SignatureDoesNotMatch.*Check the endpoint, the bucket name and the keys`));
    expect(r.stderr).not.toContain("wrong-secret");
    expect(existsSync(join(sfs, "models"))).toBe(false);
  });
});

describe("r2_flat_list", () => {
  it("pages past 1,000 keys (continuation token signed in canonical order) and decodes XML-escaped keys", async () => {
    const bucket = "comfyume-user-files-backups";
    const files: Record<string, string> = {};
    for (let i = 0; i < 1005; i++) files[`paging/k${String(i).padStart(4, "0")}.bin`] = `${i}`;
    files["paging/a&b <c>.bin"] = "escaped";
    await upload(files, bucket);
    const out = join(tmp("list"), "listing.tsv");
    const script = `source '${join(REPO, "scripts/lib/common.sh")}'; read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY; r2_setup; r2_flat_list ${bucket} paging/ '${out}'`;
    const res = spawnSync("bash", ["-c", script], { input: r2Secrets(s3), env: { PATH: process.env.PATH, HOME: process.env.HOME, R2_ENDPOINT: s3.endpoint }, encoding: "utf8", timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => l.split("\t"));
    expect(rows).toHaveLength(1006);
    expect(rows.map((r) => r[0])).toContain("paging/a&b <c>.bin");
    const last = rows.find((r) => r[0] === "paging/k1004.bin")!;
    expect(last[1]).toBe("4");
    expect(last[2]).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("seed-sfs --layout flat when the copy fails part-way", () => {
  it("names the object it could not copy, installs the rest, and a re-run copies only what is missing", async () => {
    await upload(MODEL_SET);
    // An rclone that cannot read the loras (as if R2 failed on those GETs); listing and the rest work.
    const dir = tmp("rclone-fault");
    const real = spawnSync("bash", ["-c", "command -v rclone"], { encoding: "utf8" }).stdout.trim();
    write(
      join(dir, "rclone"),
      `#!/usr/bin/env bash\nprev=''\nfor a in "$@"; do if [[ $prev == --files-from ]]; then grep -v '^loras/' "$a" >"$a.x" || true; mv "$a.x" "$a"; fi; prev=$a; done\nexec '${real}' "$@"\n`,
      0o755,
    );
    const sfs = tmp("flat-sfs");
    const env = { COMFYUME_ROOT: tmp("flat-root"), RCLONE_RETRIES: "1" };
    const args = ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models", "--layout", "flat", "--min-free-mb", "1"];
    const failed = await run("seed-sfs.sh", args, { env: { ...env, RCLONE_CMD: join(dir, "rclone") }, input: r2Secrets(s3) });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/MISSING: r2:comfyume-model-vault-backups\/loras\/camera-orbit\.safetensors could not be copied/);
    expect(existsSync(join(sfs, "models/shared/vae/ltx-vae.safetensors"))).toBe(true);
    expect(existsSync(join(sfs, "models/shared/loras/camera-orbit.safetensors"))).toBe(false);
    const before = objectReads(s3, MODELS).length;
    const resumed = await run("seed-sfs.sh", args, { env, input: r2Secrets(s3) });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(new Set(objectReads(s3, MODELS).slice(before))).toEqual(new Set(["loras/camera-orbit.safetensors"]));
    expect(readFileSync(join(sfs, "models/shared/loras/camera-orbit.safetensors"), "utf8")).toBe(MODEL_SET["loras/camera-orbit.safetensors"]);
  });
});
