// The R2 stand-in: s3rver (a real S3 protocol server) on loopback in its own process, with the
// four backup buckets and R2-shaped credentials (32/64 hex digits, as the config checks demand).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

const SERVER_SCRIPT = path.resolve(__dirname, "../../test/scripts/s3-server.mjs");

export const R2_BUCKETS = {
  models: "comfyume-model-vault-backups",
  cache: "comfyume-cache-backups",
  workerContainer: "comfyume-worker-container-backups",
  userFiles: "comfyume-user-files-backups",
} as const;

export interface S3Event {
  event: string;
  bucket?: string;
  key: string;
  size: number;
}

export interface LocalS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  buckets: typeof R2_BUCKETS;
  /** Object writes and deletes seen by the server, in order (how bytes really sent are counted). */
  events(): S3Event[];
  close(): Promise<void>;
}

export async function startLocalS3(dir: string): Promise<LocalS3> {
  const accessKeyId = randomBytes(16).toString("hex");
  const secretAccessKey = randomBytes(32).toString("hex");
  const eventsFile = path.join(dir, "events.jsonl");
  writeFileSync(eventsFile, "");
  const child = spawn(
    process.execPath,
    [SERVER_SCRIPT, path.join(dir, "data"), Object.values(R2_BUCKETS).join(","), accessKeyId, secretAccessKey, eventsFile],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("local S3 (s3rver) did not start within 20 s")), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`local S3 (s3rver) exited with ${code} before listening`));
    });
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId,
    secretAccessKey,
    buckets: R2_BUCKETS,
    events: () =>
      readFileSync(eventsFile, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as S3Event),
    async close() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
