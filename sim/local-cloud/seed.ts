// Seeds the R2 stand-in the way production data got there: sample content is laid out like an SFS
// and a mello data directory, then the real backup-instance.sh, backup-to-r2.sh and backup-mello.sh
// upload it. So every manifest, key and layout is exactly what seed-sfs.sh and restore-instance.sh read.
import { mkdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { mustRunHostScript } from "./run-script";
import type { LocalS3 } from "./s3";
import { writeMelloUserFiles, writeSampleModels, writeWorkerImageTarball, writeWorkerRoot, type WorkerIdentity } from "./sample-data";

export interface SeedReport {
  /** Bytes of sample data laid out (models, worker image tarball, mello's user files). */
  dataBytes: number;
  /** Bytes the S3 server received (objects and manifests). */
  uploadedBytes: number;
  objects: number;
  ms: number;
  workerImageId: string;
  identities: WorkerIdentity[];
}

export interface SeedArgs {
  s3: LocalS3;
  dir: string;
  melloRoot: string;
  modelSizesMiB: [number, number, number];
  backupSets: string[];
}

export async function seedR2(a: SeedArgs): Promise<SeedReport> {
  const started = Date.now();
  const sfs = path.join(a.dir, "sfs");
  const adminRoot = path.join(a.dir, "admin");
  const tmp = path.join(a.dir, "tmp");
  mkdirSync(adminRoot, { recursive: true });
  mkdirSync(tmp, { recursive: true });
  let dataBytes = writeSampleModels(sfs, a.modelSizesMiB);
  const workerImageId = writeWorkerImageTarball(path.join(sfs, "worker-image.tar.gz"));
  dataBytes += statSync(path.join(sfs, "worker-image.tar.gz")).size;

  const identities = a.backupSets.map((set, i) => writeWorkerRoot(path.join(a.dir, "workers", set), set, `100.64.0.${12 + i}`));
  for (const id of identities) {
    await mustRunHostScript("backup-instance.sh", ["--name", id.backupSet, "--sfs", sfs, "--min-free-mb", "1"], {
      env: { COMFYUME_ROOT: path.join(a.dir, "workers", id.backupSet), TMPDIR: tmp },
    });
  }
  dataBytes += writeMelloUserFiles(a.melloRoot);

  const stdin = `R2_ACCESS_KEY_ID=${a.s3.accessKeyId}\nR2_SECRET_ACCESS_KEY=${a.s3.secretAccessKey}\n`;
  const quiet = { RCLONE_RETRIES: "1", TMPDIR: tmp };
  await Promise.all([
    mustRunHostScript("backup-to-r2.sh", ["--r2-endpoint", a.s3.endpoint, "--sfs", sfs], { env: { COMFYUME_ROOT: adminRoot, ...quiet }, stdin }),
    mustRunHostScript("backup-mello.sh", ["--r2-endpoint", a.s3.endpoint], { env: { COMFYUME_ROOT: a.melloRoot, ...quiet }, stdin }),
  ]);
  const created = a.s3.events().filter((e) => e.event.startsWith("ObjectCreated"));
  return {
    dataBytes,
    uploadedBytes: created.reduce((n, e) => n + e.size, 0),
    objects: created.length,
    ms: Date.now() - started,
    workerImageId,
    identities,
  };
}
