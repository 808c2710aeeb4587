// Shared by the rescue tests: R2 read-back with rclone, and a worker with user files on its
// scratch in the local cloud.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { LocalCloud } from "../../sim/local-cloud";
import { pinHostKey, runRemote, uploadScripts, type RescuePaths } from "../../infra/rescue/remote";
import type { SshSettings } from "../../infra/rescue/state";
import type { VerdaClient } from "../../infra/verda/client";
import { until } from "../local-cloud/helpers";

export function sha256(b: Buffer | string): string {
  return createHash("sha256").update(b).digest("hex");
}

export function rcloneEnv(cloud: LocalCloud, endpoint = cloud.s3.endpoint): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH, HOME: process.env.HOME ?? "/root", RCLONE_CONFIG: "/dev/null", RCLONE_CONFIG_R2_TYPE: "s3",
    RCLONE_CONFIG_R2_PROVIDER: "Cloudflare", RCLONE_CONFIG_R2_REGION: "auto", RCLONE_CONFIG_R2_ENDPOINT: endpoint, RCLONE_CONFIG_R2_ACCESS_KEY_ID: cloud.s3.accessKeyId,
    RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: cloud.s3.secretAccessKey, RCLONE_CONFIG_R2_NO_CHECK_BUCKET: "true",
  };
}

function rclone(cloud: LocalCloud, args: string[]): Buffer {
  const r = spawnSync("rclone", args, { env: rcloneEnv(cloud), timeout: 60_000 });
  if (r.status !== 0) throw new Error(`rclone ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Manifest keys under <bucket>/<prefix>/manifests/. */
export function manifests(cloud: LocalCloud, prefix: string): string[] {
  const bucket = cloud.s3.buckets.userFiles;
  const r = spawnSync("rclone", ["lsf", `r2:${bucket}/${prefix}/manifests/`], { env: rcloneEnv(cloud), timeout: 60_000 });
  return r.status === 0 ? r.stdout.toString().split("\n").filter(Boolean) : [];
}

/**
 * Reads the newest manifest of `scratch/<dir>` back from R2 and every object it names, hashing the
 * bytes: path -> sha256 of what R2 really holds (objects that do not match their key are named).
 */
export function readBack(cloud: LocalCloud, dir: string): Record<string, string> {
  const bucket = cloud.s3.buckets.userFiles;
  const latest = manifests(cloud, `scratch/${dir}`).sort().at(-1);
  if (!latest) throw new Error(`no manifest under scratch/${dir}`);
  const text = rclone(cloud, ["cat", `r2:${bucket}/scratch/${dir}/manifests/${latest}`]).toString();
  const out: Record<string, string> = {};
  for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
    const [sha, , , rel] = line.split("\t");
    const bytes = rclone(cloud, ["cat", `r2:${bucket}/scratch/${dir}/objects/${sha!.slice(0, 2)}/${sha}`]);
    out[rel!] = sha256(bytes);
  }
  return out;
}

export interface Worker {
  id: string;
  osVolumeId: string;
  keyId: string;
  scratchId: string;
  ssh: SshSettings;
  /** dir ("inputs"/"outputs") -> relative path -> sha256 */
  files: Record<string, Record<string, string>>;
}

export async function waitVolume(api: VerdaClient, id: string, status: string): Promise<void> {
  await until(`volume ${id} ${status}`, async () => ((await api.getVolume(id))?.status === status ? true : undefined), 30_000);
}

/** A worker with a blank scratch, formatted by prepare-scratch, holding users' files. */
export async function workerWithUserFiles(cloud: LocalCloud, api: VerdaClient, paths: RescuePaths, log: (l: string) => void): Promise<Worker> {
  const keyId = await api.createSshKey({ name: "admin", key: cloud.env.COMFYUME_SIM_ADMIN_PUBLIC_KEY! });
  const scratchId = await api.createVolume({ type: "NVMe", name: "worker-scratch", size: 5, location_code: "FIN-01" });
  await waitVolume(api, scratchId, "detached");
  const id = await api.deployInstance({
    instance_type: "CPU.8V.32G", image: "ubuntu-24.04", hostname: "comfyume-test-day", description: "worker", location_code: "FIN-01",
    ssh_key_ids: [keyId], existing_volumes: [scratchId],
  });
  const host = await cloud.waitForInstanceHost(id, 30_000);
  const ssh: SshSettings = { user: "root", port: host.port, privateKey: readFileSync(cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE!, "utf8"), dialErrorLimit: 5, perDialTimeout: 10 };
  const worker = await pinHostKey(host.host, ssh, log);
  await uploadScripts(worker, paths);
  await runRemote(worker, "prepare-scratch", `bash ${paths.scriptsDir}/host/prepare-scratch.sh --volume-id ${scratchId} --mount-point ${paths.scratchMount} --no-fstab`, { timeoutSeconds: 120 });
  const files: Worker["files"] = { inputs: {}, outputs: {} };
  for (const [dir, name, size] of [["inputs", "user001/reference.png", 40_000], ["outputs", "user001/ComfyUI_00001_.mp4", 200_000], ["outputs", "user002/clip.mp4", 90_000]] as const) {
    const content = randomBytes(size);
    const file = `${paths.scratchMount}/${dir}/${name}`;
    await runRemote(worker, `write ${file}`, `mkdir -p "$(dirname '${file}')" && base64 -d > '${file}'`, { stdin: content.toString("base64"), timeoutSeconds: 60 });
    files[dir]![name] = sha256(content);
  }
  const osVolumeId = (await api.getInstance(id))!.os_volume_id!;
  return { id, osVolumeId, keyId, scratchId, ssh, files };
}
