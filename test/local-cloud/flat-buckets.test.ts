// The local cloud seeds the workshop's flat buckets as they are today (issue 14, item 6), and a flat seed
// of an SFS from them (seed-sfs.sh --layout flat, real scripts, rclone, curl, versitygw) gives exactly
// their content: every model verified, the newest dated tarball of each name, nothing copied twice.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLAT_MODEL_TYPES, seedFlatBuckets, type FlatSeedReport } from "../../sim/local-cloud/flat-buckets";
import { startLocalS3, type LocalS3 } from "../../sim/local-cloud/s3";
import { run, treeHashes } from "../scripts/helpers";

let s3: LocalS3;
let work: string;
let report: FlatSeedReport;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "flat-buckets-test-"));
  mkdirSync(join(work, "server"));
  s3 = await startLocalS3(join(work, "server"), { host: "127.0.103.3" });
  report = await seedFlatBuckets(s3);
});
afterAll(async () => {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Object reads (GetObject/HeadObject) the server answered, all buckets. */
function objectReads(): number {
  return readFileSync(join(work, "server/access.log"), "utf8")
    .split("\n")
    .filter((l) => /\ss3_(GetObject|HeadObject)\s/.test(l)).length;
}

function seed(sfs: string, userData: string) {
  return run(
    "seed-sfs.sh",
    ["--layout", "flat", "--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "models,cache,worker,user-files", "--user-files-dest", userData, "--min-free-mb", "1"],
    { env: { COMFYUME_ROOT: join(work, "root"), RCLONE_RETRIES: "1" }, input: `R2_ACCESS_KEY_ID=${s3.accessKeyId}\nR2_SECRET_ACCESS_KEY=${s3.secretAccessKey}\n`, timeoutMs: 120_000 },
  );
}

describe("flat buckets in the local cloud", () => {
  it("hold their layout: <model_type>/<file>.safetensors for every model type, dated tarballs, no manifests", () => {
    const models = report.keys[s3.buckets.models]!;
    expect(new Set(models.map((k) => k.split("/")[0]))).toEqual(new Set(FLAT_MODEL_TYPES));
    expect(models.every((k) => /^[a-z_]+\/[^/]+\.safetensors$/.test(k))).toBe(true);
    expect(report.keys[s3.buckets.cache]!.every((k) => /^config\/.+-\d{4}-\d{1,2}-\d{1,2}\.tar\.gz$/.test(k))).toBe(true);
    expect(report.keys[s3.buckets.workerContainer]!.every((k) => /^[^/]+-\d{4}-\d{2}-\d{2}\.tar\.gz$/.test(k))).toBe(true);
    expect(report.keys[s3.buckets.userFiles]!.every((k) => /^user-data-\d{4}-\d{2}-\d{2}-\d{1,2}\.tar\.gz$/.test(k))).toBe(true);
    const all = Object.values(report.keys).flat();
    expect(all.some((k) => k.includes("manifests/"))).toBe(false);
  });

  it("seed an SFS with --layout flat: every model verified, the newest tarball of each name; a second seed copies nothing", async () => {
    const sfs = join(work, "sfs");
    const userData = join(work, "mello-data");
    mkdirSync(sfs, { recursive: true });
    const first = await seed(sfs, userData);
    expect(first.code, first.stderr).toBe(0);
    expect(treeHashes(join(sfs, "models/shared"))).toEqual(report.models);
    expect(first.stderr).toMatch(/multipart ETag of r2:comfyume-model-vault-backups\/checkpoints\/ltx-2-19b-dev-fp8\.safetensors verified: [0-9a-f]{32}-2, part size 5242880/);
    expect(first.stderr).toMatch(new RegExp(`verified ${Object.keys(report.models).length} file\\(s\\)`));
    expect(JSON.parse(readFileSync(join(sfs, "cache/config/comfyui-settings/comfy.settings.json"), "utf8")).v).toBe(12);
    expect(readFileSync(join(sfs, "cache/config/nginx/nginx.conf"), "utf8")).toContain("listen 80");
    const image = spawnSync("tar", ["-xzOf", join(sfs, "worker-image.tar.gz"), "manifest.json"], { encoding: "utf8" });
    expect(image.stdout).toContain("comfyui-worker:2026-01-12");
    expect(JSON.parse(readFileSync(join(userData, "user001/workflow.json"), "utf8")).nodes).toBe(14);

    const before = objectReads();
    const second = await seed(sfs, userData);
    expect(second.code, second.stderr).toBe(0);
    expect(objectReads()).toBe(before);
    expect(second.stderr).toMatch(/models +[\d.]+ +0 fetched, 7 unchanged, 0 adopted/);
  });
});
