// The R2 stand-in: a real S3 server (versitygw, sim/local-cloud/s3-server.ts) on loopback in its
// own process, with the four backup buckets and R2-shaped credentials (32/64 hex digits, as the
// config checks demand).
import { randomBytes } from "node:crypto";
import { startS3Server, type S3Event } from "./s3-server";

export type { S3Event } from "./s3-server";

export const R2_BUCKETS = {
  models: "comfyume-model-vault-backups",
  cache: "comfyume-cache-backups",
  workerContainer: "comfyume-worker-container-backups",
  userFiles: "comfyume-user-files-backups",
} as const;

export interface LocalS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  buckets: typeof R2_BUCKETS;
  /** Object writes and deletes seen by the server, in order (how bytes really sent are counted). */
  events(): S3Event[];
  /** "R2 lying": alters the stored bytes of an object (same size); listings keep the old ETag and size. */
  corruptObject(bucket: string, key: string, bytes?: Buffer): void;
  /** Deletes an object out of band (as in R2's console); no event is logged. */
  removeObject(bucket: string, key: string): void;
  /** The server's storage: `<dataDir>/<bucket>/<key>` holds an object's bytes (read only). */
  dataDir: string;
  close(): Promise<void>;
}

export async function startLocalS3(dir: string, options: { host?: string } = {}): Promise<LocalS3> {
  const accessKeyId = randomBytes(16).toString("hex");
  const secretAccessKey = randomBytes(32).toString("hex");
  const server = await startS3Server({ dir, buckets: Object.values(R2_BUCKETS), accessKeyId, secretAccessKey, host: options.host });
  return {
    endpoint: server.endpoint,
    accessKeyId,
    secretAccessKey,
    buckets: R2_BUCKETS,
    events: () => server.events(),
    corruptObject: (bucket, key, bytes) => server.corruptObject(bucket, key, bytes),
    removeObject: (bucket, key) => server.removeObject(bucket, key),
    dataDir: server.dataDir,
    close: () => server.close(),
  };
}
