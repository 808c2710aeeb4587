// The workshop's own R2 buckets as they are today (issue 14): flat and dated, no manifests. Models as
// `<model_type>/<file>.safetensors`, config as `config/<name>-<YYYY-MM-DD>.tar.gz`, images as
// `<image>-<YYYY-MM-DD>.tar.gz`, user data as `user-data-<YYYY-MM-DD-HH>.tar.gz`. Small, deterministic
// files, uploaded with rclone the way an operator did (the checkpoint in 5 MiB parts, so its ETag is a
// multipart one), into the four buckets beside whatever the project's own backups put there.
// `rehearse --adopt` and the tests seed these, then check a flat seed against `FlatSeedReport`.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { pseudoRandomBytes, writeFile } from "./sample-data";
import { R2_BUCKETS } from "./s3";

/** The model types their vault holds (they land on the SFS under models/shared/<type>/). */
export const FLAT_MODEL_TYPES = ["checkpoints", "diffusion_models", "text_encoders", "vae", "loras", "latent_upscale_models", "controlnet"] as const;

export interface FlatBucketsTarget {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface FlatSeedReport {
  /** Model key (= path under models/shared) -> SHA-256 of its bytes. */
  models: Record<string, string>;
  /** The key a correct "newest per name" pick takes, per set and name (string order would pick others). */
  latest: { config: Record<string, string>; worker: Record<string, string>; userFiles: string };
  /** Every key written, per bucket. */
  keys: Record<string, string[]>;
  bytes: number;
}

/** A tar.gz of FILES (path -> content), members dated 2026-01-01 so a local edit is always newer. */
function tarball(files: Record<string, string>): Buffer {
  const work = mkdtempSync(path.join(tmpdir(), "comfyume-flat-tar-"));
  try {
    for (const [rel, content] of Object.entries(files)) writeFile(path.join(work, "src", rel), content);
    const out = path.join(work, "out.tar.gz");
    const r = spawnSync("tar", ["--sort=name", "--mtime=2026-01-01 00:00:00", "--owner=0", "--group=0", "-czf", out, "-C", path.join(work, "src"), ...Object.keys(files)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
    return readFileSync(out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Their layout, bucket -> key -> bytes; the checkpoint is `checkpointMiB` (multipart above 5 MiB). */
export function flatBucketContent(checkpointMiB = 6): { files: Record<string, Record<string, Buffer>>; report: Omit<FlatSeedReport, "bytes" | "keys"> } {
  const model = (rel: string, size: number) => pseudoRandomBytes(`flat:${rel}`, size);
  const models: Record<string, Buffer> = {
    "checkpoints/ltx-2-19b-dev-fp8.safetensors": model("checkpoints", Math.round(checkpointMiB * 1048576) + 123),
    "diffusion_models/wan2.2-t2v-a14b.safetensors": model("diffusion", 96 * 1024),
    "text_encoders/gemma-3-12b-it.safetensors": model("text", 64 * 1024),
    "vae/ltx-2-vae.safetensors": model("vae", 32 * 1024),
    "loras/ltx-2-camera-dolly-left.safetensors": model("lora", 16 * 1024),
    "latent_upscale_models/ltx-2-spatial-upscaler-x2.safetensors": model("upscaler", 24 * 1024),
    "controlnet/ltx-2-depth.safetensors": model("controlnet", 8 * 1024),
  };
  const config: Record<string, Buffer> = {
    // "2026-1-9" sorts after "2026-01-12" as a string; the date makes 01-12 the newest.
    "config/comfyui-settings-2026-1-9.tar.gz": tarball({ "comfy.settings.json": '{"theme":"dark","v":9}\n' }),
    "config/comfyui-settings-2026-01-12.tar.gz": tarball({ "comfy.settings.json": '{"theme":"dark","v":12}\n' }),
    "config/nginx-2025-12-30.tar.gz": tarball({ "nginx.conf": "server { listen 80; }\n" }),
  };
  const image = (tag: string) => tarball({ "manifest.json": JSON.stringify([{ Config: `blobs/sha256/${tag}`, RepoTags: [`comfyui-worker:${tag}`], Layers: [] }]) });
  const worker: Record<string, Buffer> = {
    "comfyui-worker-2026-01-09.tar.gz": image("2026-01-09"),
    "comfyui-worker-2026-01-12.tar.gz": image("2026-01-12"),
  };
  const userFiles: Record<string, Buffer> = {
    "user-data-2026-01-12-9.tar.gz": tarball({ "user001/workflow.json": '{"nodes":9}\n' }),
    "user-data-2026-01-12-14.tar.gz": tarball({ "user001/workflow.json": '{"nodes":14}\n' }),
  };
  return {
    files: { [R2_BUCKETS.models]: models, [R2_BUCKETS.cache]: config, [R2_BUCKETS.workerContainer]: worker, [R2_BUCKETS.userFiles]: userFiles },
    report: {
      models: Object.fromEntries(Object.entries(models).map(([k, b]) => [k, createHash("sha256").update(b).digest("hex")])),
      latest: {
        config: { "comfyui-settings": "config/comfyui-settings-2026-01-12.tar.gz", nginx: "config/nginx-2025-12-30.tar.gz" },
        worker: { "comfyui-worker": "comfyui-worker-2026-01-12.tar.gz" },
        userFiles: "user-data-2026-01-12-14.tar.gz",
      },
    },
  };
}

function rcloneCopy(t: FlatBucketsTarget, src: string, bucket: string): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: src, RCLONE_CONFIG: "/dev/null", RCLONE_CONFIG_R2_TYPE: "s3", RCLONE_CONFIG_R2_PROVIDER: "Cloudflare",
    RCLONE_CONFIG_R2_REGION: "auto", RCLONE_CONFIG_R2_ENDPOINT: t.endpoint, RCLONE_CONFIG_R2_NO_CHECK_BUCKET: "true",
    RCLONE_CONFIG_R2_ACCESS_KEY_ID: t.accessKeyId, RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: t.secretAccessKey,
  };
  return new Promise((resolve, reject) => {
    // 5 MiB parts above 5 MiB, as their uploads of large models were multipart.
    const child = spawn("rclone", ["copy", "--retries", "1", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, `r2:${bucket}`], { env });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`seeding flat bucket ${bucket} failed: ${stderr.trim().split("\n").slice(-1)[0]}`))));
  });
}

/** Uploads their flat layout into the four buckets of `t`; returns what a correct flat seed must give. */
export async function seedFlatBuckets(t: FlatBucketsTarget, options: { checkpointMiB?: number } = {}): Promise<FlatSeedReport> {
  const { files, report } = flatBucketContent(options.checkpointMiB);
  const work = mkdtempSync(path.join(tmpdir(), "comfyume-flat-seed-"));
  try {
    let bytes = 0;
    const keys: Record<string, string[]> = {};
    for (const [bucket, objects] of Object.entries(files)) {
      const src = path.join(work, bucket);
      for (const [key, body] of Object.entries(objects)) {
        writeFile(path.join(src, key), body);
        bytes += body.length;
      }
      keys[bucket] = Object.keys(objects).sort();
      await rcloneCopy(t, src, bucket);
    }
    return { ...report, keys, bytes };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
