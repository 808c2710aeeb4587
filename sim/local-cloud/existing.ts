// Resources that exist before the stacks (issue 14: the workshop as it runs today), made out of band in
// the local cloud the way the console and an admin made them: an SFS holding models in their flat layout,
// an app instance running the app with the SFS mounted, and (flat-buckets.ts) their four flat buckets.
// `rehearse --adopt` adopts them and proves they come out untouched (sim/rehearsal/adopt.ts).
import { createHash } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { sfsMountTarget } from "../../components/sfs-target";
import { VerdaClient } from "../../infra/verda/client";
import { flatBucketContent } from "./flat-buckets";
import type { LocalCloud } from "./index";
import { pseudoRandomBytes, writeFile } from "./sample-data";

/** The API as the console uses it: the simulator's own credentials. */
export function consoleClient(cloud: LocalCloud): VerdaClient {
  return new VerdaClient({ clientId: cloud.verda.clientId, clientSecret: cloud.verda.clientSecret, baseUrl: cloud.verda.baseUrl });
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Every regular file under `dir` (relative path -> SHA-256), skipping `skip` (relative dirs). */
export function hashTree(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      if (skip.includes(child)) continue;
      const st = statSync(path.join(dir, child));
      if (st.isDirectory()) walk(child);
      else if (st.isFile()) out[child] = sha256(readFileSync(path.join(dir, child)));
    }
  };
  walk("");
  return out;
}

/** What the workshop's SFS holds today (their flat layout), relative to the SFS root. */
export function workshopSfsFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  // The model vault bucket is their backup of these: same keys under models/shared, same bytes.
  for (const [key, body] of Object.entries(flatBucketContent(1).files["comfyume-model-vault-backups"] ?? {})) files[`models/shared/${key}`] = body;
  files["extra_model_paths.yaml"] = Buffer.from(
    ["comfyui:", "  base_path: /mnt/sfs/models/shared/", "  checkpoints: checkpoints/", "  diffusion_models: diffusion_models/", "  text_encoders: text_encoders/",
      "  vae: vae/", "  loras: loras/", "  latent_upscale_models: latent_upscale_models/", "  controlnet: controlnet/", ""].join("\n"),
  );
  files["outputs/user007/ComfyUI_00311_.mp4"] = pseudoRandomBytes("sfs-output-311", 40 * 1024);
  files["cache/huggingface/hub/version.txt"] = Buffer.from("1\n");
  return files;
}

/**
 * An SFS made in the console (POST /volumes) and filled by the workshop: models under
 * models/shared/<type>/, extra_model_paths.yaml, outputs/ at mode 1777, cache/huggingface. Returns its id.
 */
export async function createExistingSfs(cloud: LocalCloud, o: { name: string; sizeGb: number; location: string }): Promise<string> {
  const api = consoleClient(cloud);
  const id = await api.createVolume({ type: "NVMe_Shared", location_code: o.location, size: o.sizeGb, name: o.name });
  const root = await waitForDir(() => cloud.sfsDir(id));
  for (const [rel, body] of Object.entries(workshopSfsFiles())) writeFile(path.join(root, rel), body);
  chmodSync(path.join(root, "outputs"), 0o1777);
  return id;
}

async function waitForDir(dir: () => string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      const d = dir();
      if (statSync(d).isDirectory()) return d;
    } catch {
      // the cloud makes the volume's storage on its next poll (once Verda reports it)
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the SFS's storage did not appear in the local cloud");
}

export interface RunningApp {
  hostname: string;
  instanceType: string;
  location: string;
  image: string;
  sfsId: string;
  /** The admin's public key (registered at Verda under `keyName`, as the workshop did). */
  publicKey: string;
  keyName: string;
  projectDir: string;
  dataDir: string;
  /** Relative path -> content of the users' files already on it. */
  userFiles: Record<string, Buffer>;
  composeFiles: string[];
  profiles: string[];
  services: string[];
  redisPassword: string;
}

/**
 * The app instance as it runs today: deployed in the console with the SFS shared, nfs-common installed
 * and the SFS mounted at /mnt/sfs by hand, the app's checkout and users' files in place, and every service
 * up (`docker compose up -d`, Redis published on the instance's address). Returns its id and address.
 */
export async function createRunningAppInstance(cloud: LocalCloud, o: RunningApp): Promise<{ id: string; ip: string }> {
  const api = consoleClient(cloud);
  const keyId = await api.createSshKey({ name: o.keyName, key: o.publicKey });
  const id = await api.deployInstance({
    instance_type: o.instanceType, image: o.image, hostname: o.hostname, location_code: o.location, description: "app (made in the console)",
    ssh_key_ids: [keyId], existing_volumes: [o.sfsId], contract: "PAY_AS_YOU_GO", os_volume: { name: `${o.hostname}-os`, size: 100 },
  } as Parameters<VerdaClient["deployInstance"]>[0]);
  const host = await cloud.waitForInstanceHost(id, 120_000);
  const sfs = await api.getVolume(o.sfsId);
  const target = sfsMountTarget({ mountCommand: sfs?.mount_command, target: sfs?.target, pseudoPath: sfs?.pseudo_path }, o.location);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const must = async (what: string, command: string) => {
    const r = await cloud.exec(id, `set -euo pipefail\n${command}`, 300_000);
    if (r.code !== 0) throw new Error(`out-of-band app instance: ${what} failed: ${r.out.trim().split("\n").slice(-3).join(" | ")}`);
  };
  await must("apt-get install nfs-common", "DEBIAN_FRONTEND=noninteractive apt-get -qq update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y nfs-common >/dev/null");
  await must("mounting the SFS", `mkdir -p /mnt/sfs && mount -t nfs -o nconnect=16 ${q(target)} /mnt/sfs`);
  // The checkout and the users' files, written into the machine's root as its admin put them there.
  const put = (file: string, body: Buffer, mode = 0o644) => writeFile(path.join(host.root, file), body, mode);
  for (const f of o.composeFiles) put(`${o.projectDir}/${f}`, Buffer.from("services: {}\n"));
  put(`${o.projectDir}/.env`, Buffer.from(`REDIS_HOST=redis\nREDIS_PASSWORD=${o.redisPassword}\nREDIS_BIND_IP=${host.host}\n`), 0o600);
  for (const [rel, body] of Object.entries(o.userFiles)) put(`${o.dataDir}/${rel}`, body);
  // It is on their tailnet (its own identity, which the backups keep).
  put("/var/lib/tailscale/tailscaled.state", Buffer.from(JSON.stringify({ _machinekey: `mkey:${o.hostname}`, _profiles: "quiet-city" })), 0o600);
  const manifest = JSON.stringify([{ Config: "blobs/sha256/comfyume-app-2026-01-12", RepoTags: ["comfyume-app:2026-01-12"], Layers: [] }]);
  const compose = [...o.composeFiles.flatMap((f) => ["-f", q(`${o.projectDir}/${f}`)]), ...o.profiles.flatMap((p) => ["--profile", q(p)])].join(" ");
  await must(
    "starting the app",
    `d=$(mktemp -d) && printf '%s' ${q(manifest)} > "$d/manifest.json" && tar -czf /root/app-image.tar.gz -C "$d" manifest.json && docker load -i /root/app-image.tar.gz >/dev/null\n` +
      `docker compose ${compose} --env-file ${q(`${o.projectDir}/.env`)} up -d ${o.services.map(q).join(" ")} >/dev/null`,
  );
  return { id, ip: host.host };
}
