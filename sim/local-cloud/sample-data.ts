// Deterministic sample content for the seeded R2: models of pseudo-random bytes, a `docker save`-
// shaped worker image tarball, a worker identity (Tailscale state, SSH host key, project checkout)
// and mello's user files. The same options always give the same bytes.
import { spawnSync } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { generateKeyPair } from "./keys";

const MiB = 1024 * 1024;

/** `size` bytes from AES-256-CTR keyed by `seed`: fast, reproducible, incompressible. */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export function writeFile(file: string, content: string | Buffer, mode?: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  if (mode !== undefined) chmodSync(file, mode);
}

/** Writes models/{checkpoints,loras,vae}/... under `sfs`; returns the bytes written. */
export function writeSampleModels(sfs: string, sizesMiB: [number, number, number]): number {
  const files: [string, number][] = [
    ["models/checkpoints/sim-base-v1.safetensors", sizesMiB[0]],
    ["models/loras/sim-style-v1.safetensors", sizesMiB[1]],
    ["models/vae/sim-vae-v1.safetensors", sizesMiB[2]],
  ];
  let bytes = 0;
  for (const [rel, mib] of files) {
    const size = Math.round(mib * MiB);
    writeFile(path.join(sfs, rel), pseudoRandomBytes(rel, size));
    bytes += size;
  }
  return bytes;
}

/** A gzipped `docker save` layout whose manifest names the config blob; returns the image id. */
export function writeWorkerImageTarball(file: string): string {
  const work = mkdtempSync(path.join(tmpdir(), "comfyume-image-"));
  try {
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["python", "main.py"] }, comment: "comfyume local cloud worker" });
    const id = createHash("sha256").update(config).digest("hex");
    writeFile(path.join(work, "blobs/sha256", id), config);
    const layer = pseudoRandomBytes("worker-layer", 256 * 1024);
    const layerId = createHash("sha256").update(layer).digest("hex");
    writeFile(path.join(work, "blobs/sha256", layerId), layer);
    writeFile(path.join(work, "manifest.json"), JSON.stringify([{ Config: `blobs/sha256/${id}`, RepoTags: ["comfyui-worker:local"], Layers: [`blobs/sha256/${layerId}`] }]));
    mkdirSync(path.dirname(file), { recursive: true });
    const r = spawnSync("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-czf", file, "-C", work, "manifest.json", "blobs"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tar of the worker image failed: ${r.stderr}`);
    return `sha256:${id}`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface WorkerIdentity {
  backupSet: string;
  tailscaleIp: string;
  /** authorized_keys form of the identity's SSH host key (what `gpu.hostPublicKey` pins). */
  hostPublicKey: string;
}

/** A worker's root as backup-instance.sh expects it: Tailscale identity, SSH host keys, project. */
export function writeWorkerRoot(root: string, backupSet: string, tailscaleIp: string): WorkerIdentity {
  const hostKey = generateKeyPair();
  writeFile(path.join(root, "var/lib/tailscale/tailscaled.state"), `ip=${tailscaleIp}\nkey=${createHash("sha256").update(backupSet).digest("hex")}\n`, 0o600);
  writeFile(path.join(root, "etc/ssh/ssh_host_ed25519_key"), hostKey.privateKey, 0o600);
  writeFile(path.join(root, "etc/ssh/ssh_host_ed25519_key.pub"), `${hostKey.publicKey} root@${backupSet}\n`, 0o644);
  const project = path.join(root, "home/dev/comfyume");
  writeFile(path.join(project, "README.md"), "# comfyume (local cloud sample checkout)\n");
  writeFile(path.join(project, "comfyui-worker/docker-compose.yml"), "services:\n  worker-1:\n    image: comfyui-worker:local\n    env_file: ../.env\n");
  writeFile(path.join(project, "comfyui-worker/worker.py"), "print('comfyui worker (local cloud sample)')\n");
  writeFile(path.join(project, ".env"), "PROJECT_NAME=comfyume\nREDIS_PORT=6379\n", 0o600);
  return { backupSet, tailscaleIp, hostPublicKey: hostKey.publicKey };
}

/** mello's user files under data/: user_data, outputs, inputs (what backup-mello.sh saves). */
export function writeMelloUserFiles(melloRoot: string): number {
  const data = path.join(melloRoot, "home/dev/comfyume/data");
  const files: [string, Buffer | string][] = [
    ["user_data/user001/comfy.settings.json", '{"Comfy.UseNewMenu": "Top"}\n'],
    ["user_data/user002/workflows/intro.json", '{"nodes": [], "links": []}\n'],
    ["outputs/user001/sample_00001.png", pseudoRandomBytes("outputs/user001", 96 * 1024)],
    ["inputs/user002/reference.jpg", pseudoRandomBytes("inputs/user002", 48 * 1024)],
  ];
  let bytes = 0;
  for (const [rel, content] of files) {
    writeFile(path.join(data, rel), content);
    bytes += Buffer.byteLength(content);
  }
  return bytes;
}
