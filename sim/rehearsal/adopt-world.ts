// `rehearse --adopt`, the world before the stacks: what exists today (made out of band, as the console
// and the workshop's admin made it) and the fingerprint of it the rehearsal compares at the end.
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalCloud } from "../local-cloud";
import { createExistingSfs, createRunningAppInstance, hashTree, workshopSfsFiles } from "../local-cloud/existing";
import { pseudoRandomBytes } from "../local-cloud/sample-data";
import { sha256 } from "./r2-readback";

export const EXISTING = {
  sfsName: "CLONE_SFS-Model-Vault-22-Jan-01-4xR2NHBi",
  sfsSizeGb: 220,
  location: "FIN-01",
  appHostname: "quiet-city-purrs-fin-01",
  appType: "CPU.8V.32G",
  appImage: "ubuntu-24.04",
  projectDir: "/home/dev/comfyume-v1",
  dataDir: "/home/dev/comfyume-v1/data",
  composeFiles: ["docker-compose.yml", "docker-compose.users.yml"],
  profiles: ["container-nginx"],
  services: ["nginx", "redis", "queue-manager", "admin", ...Array.from({ length: 20 }, (_, i) => `user${String(i + 1).padStart(3, "0")}`)],
  dataDirs: ["user_data", "outputs", "inputs"],
} as const;

/** The users' files on the app instance today (names the rehearsal's activity never writes). */
export const EXISTING_USER_FILES: Record<string, Buffer> = {
  "user_data/user010/workflow.json": Buffer.from('{"nodes":42}\n'),
  "outputs/user010/ComfyUI_00042_.mp4": pseudoRandomBytes("existing-output-42", 96 * 1024),
  "inputs/user010/reference.png": pseudoRandomBytes("existing-input-10", 24 * 1024),
};

export interface World {
  sfsId: string;
  appId: string;
  appIp: string;
  /** SHA-256 of every file the SFS held before (relative to its root). */
  sfsHashes: Record<string, string>;
  /** bucket -> key -> SHA-256 of the flat objects seeded like the workshop's. */
  flatHashes: Record<string, Record<string, string>>;
}

/** Out of band: the SFS (flat layout), the app instance running the app, the flat buckets (seeded at start). */
export async function makeExistingWorld(cloud: LocalCloud, publicKey: string): Promise<World> {
  const sfsId = await createExistingSfs(cloud, { name: EXISTING.sfsName, sizeGb: EXISTING.sfsSizeGb, location: EXISTING.location });
  const app = await createRunningAppInstance(cloud, {
    hostname: EXISTING.appHostname, instanceType: EXISTING.appType, location: EXISTING.location, image: EXISTING.appImage, sfsId,
    publicKey, keyName: "PROD_admin", projectDir: EXISTING.projectDir, dataDir: EXISTING.dataDir, userFiles: EXISTING_USER_FILES,
    composeFiles: [...EXISTING.composeFiles], profiles: [...EXISTING.profiles], services: [...EXISTING.services],
    redisPassword: cloud.env.COMFYUME_SIM_REDIS_PASSWORD,
  });
  const sfsHashes = hashTree(cloud.sfsDir(sfsId));
  const expected = Object.keys(workshopSfsFiles()).sort();
  if (JSON.stringify(Object.keys(sfsHashes).sort()) !== JSON.stringify(expected)) throw new Error(`the out-of-band SFS holds ${Object.keys(sfsHashes).join(", ")}, not the workshop's layout`);
  return { sfsId, appId: app.id, appIp: app.ip, sfsHashes, flatHashes: flatObjectHashes(cloud) };
}

/** The flat objects' bytes as the S3 server stores them now (bucket -> key -> SHA-256; missing: ""). */
export function flatObjectHashes(cloud: LocalCloud): Record<string, Record<string, string>> {
  const keys = cloud.flatSeed?.keys ?? {};
  return Object.fromEntries(
    Object.entries(keys).map(([bucket, list]) => [
      bucket,
      Object.fromEntries(list.map((key) => {
        const file = path.join(cloud.faults.s3DataDir, bucket, key);
        return [key, fs.existsSync(file) ? sha256(fs.readFileSync(file)) : ""];
      })),
    ]),
  );
}

/** SHA-256 of the app host's pre-existing users' files, read on the host now ("" when missing). */
export async function appUserFileHashes(cloud: LocalCloud, appId: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of Object.keys(EXISTING_USER_FILES)) {
    const r = await cloud.exec(appId, `sha256sum '${EXISTING.dataDir}/${rel}' 2>/dev/null | cut -d' ' -f1`);
    out[rel] = r.out.trim();
  }
  return out;
}

export const expectedUserFileHashes = (): Record<string, string> => Object.fromEntries(Object.entries(EXISTING_USER_FILES).map(([k, b]) => [k, sha256(b)]));

/** Which entries of `before` are missing or changed in `after`. */
export function changed(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys(before).filter((k) => after[k] !== before[k]);
}
