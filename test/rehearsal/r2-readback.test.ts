// After a nightly destroy the rehearsal reads every set's newest manifest back from the S3 endpoint
// standing in for R2 and fails, naming the set, when one is missing, empty (a source the backup's
// `find` never entered "verifies" as zero files) or not written by that backup.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { latestManifest, manifestProblems, manifestTable, nightlySets, rcloneS3 } from "../../sim/rehearsal/r2-readback";

describe("rehearsal: every backup set's manifest, read back from R2", () => {
  let cloud: LocalCloud;
  beforeAll(async () => {
    cloud = await startLocalCloud({ loopbackNet: "127.90.0", modelSizesMiB: [1, 1, 1] });
  }, 120_000);
  afterAll(async () => cloud?.close());

  it("fails naming a set whose manifest is missing, empty or not new, and tables entries and bytes per set", () => {
    const sets = nightlySets(cloud);
    const seeded = sets.map((s) => latestManifest(cloud, s));
    // The seed backs up the SFS sets and mello, never a scratch: those two have no manifest yet.
    expect(manifestProblems(seeded)).toEqual([
      `set scratch/inputs: no manifest under r2:${cloud.s3.buckets.userFiles}/scratch/inputs/manifests/`,
      `set scratch/outputs: no manifest under r2:${cloud.s3.buckets.userFiles}/scratch/outputs/manifests/`,
    ]);
    const worker = seeded.find((m) => m.set.name === "worker")!;
    expect(worker.entries.map((e) => e.path)).toEqual(["worker-image.tar.gz"]);
    expect(worker.bytes).toBeGreaterThan(0);
    expect(worker.bytes).toBe(worker.entries[0]!.size);
    expect(seeded.find((m) => m.set.name === "models")!.entries).toHaveLength(3);

    // What a backup of a symlinked mount point used to write: a valid manifest with no entries, newest.
    const empty = path.join(cloud.dir, "empty-manifest.tsv");
    fs.writeFileSync(empty, "# comfyume-manifest v2: sha256\tmd5\tsize\tpath\tkey\n");
    rcloneS3(cloud, ["copyto", empty, `r2:${cloud.s3.buckets.workerContainer}/worker/manifests/2099-01-01T000000Z.tsv`]);
    const before = new Map(seeded.map((m) => [m.set.name, m.key]));
    const now = sets.map((s) => latestManifest(cloud, s));
    const problems = manifestProblems(now, before);
    expect(problems).toContain("set worker: newest manifest worker/manifests/2099-01-01T000000Z.tsv is empty (0 entries): its source was not read");
    // Nothing new since `before` for the other seeded sets either.
    expect(problems).toContain(`set models: no new manifest under r2:${cloud.s3.buckets.models}/models/manifests/ (newest is still ${before.get("models")})`);

    const table = manifestTable(now);
    expect(table).toMatch(/^worker\s+comfyume-worker-container-backups\s+0\s+0\s+manifests\/2099-01-01T000000Z\.tsv$/m);
    expect(table).toMatch(new RegExp(`^models\\s+comfyume-model-vault-backups\\s+3\\s+${3 * 1048576}\\s+manifests/\\S+\\.tsv$`, "m"));
    expect(table).toMatch(/^scratch\/inputs\s+comfyume-user-files-backups\s+0\s+0\s+— \(none\)$/m);
  }, 120_000);
});
