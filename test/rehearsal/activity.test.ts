// The rehearsal's simulated users write where the backups read: mello's user files on mello's own
// disk (its root + backup-mello's data directory), not this machine's /home. "Back byte for byte"
// reads them back from the backup (R2) and from the host, and names what is corrupt or lost.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { MELLO_DATA_DIR, simulateUsers, verifyWork, type WorkFile } from "../../sim/rehearsal/activity";
import { BUILD_MACHINE_DIRS, snapshot, snapshotDiff } from "./host-snapshot";

describe("rehearsal: simulated users' files", () => {
  let cloud: LocalCloud;
  beforeAll(async () => {
    cloud = await startLocalCloud({ loopbackNet: "127.89.0", modelSizesMiB: [1, 1, 1] });
  }, 120_000);
  afterAll(async () => cloud?.close());

  it("land on mello's own disk, where backup-mello reads them, and verify from there", async () => {
    const mello = { host: cloud.mello.host, port: cloud.mello.port, hostKey: cloud.mello.hostKey };
    const keyFile = cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE;
    // mello stands in for the worker too: only the mello half is under test here.
    const before = snapshot(BUILD_MACHINE_DIRS);
    const files = await simulateUsers(cloud.dir, keyFile, mello, mello, 1);
    const written = snapshotDiff(before, snapshot(BUILD_MACHINE_DIRS));
    expect(written, `written on this machine, outside mello:\n${written.join("\n")}`).toEqual([]);
    const onMello = files.filter((f) => f.host === "mello");
    expect(onMello.length).toBeGreaterThan(0);
    for (const f of onMello) {
      const local = path.join(cloud.mello.root, f.path); // mello's / seen from outside
      expect(fs.existsSync(local), `${f.path} under mello's root`).toBe(true);
      expect(createHash("sha256").update(fs.readFileSync(local)).digest("hex")).toBe(f.sha256);
    }
    // On mello byte for byte; not backed up yet, so the check names each as missing from R2.
    expect(await verifyWork(cloud, keyFile, mello, mello, onMello)).toEqual(
      onMello.map((f) => `mello:${f.path} in R2: not in the newest manifest of set mello/${f.path.split("/")[5]}`),
    );
  }, 120_000);

  it("are checked byte for byte where the backup holds them (R2, read back) and on mello: the check fails for a corrupt backup or a lost file", async () => {
    const mello = { host: cloud.mello.host, port: cloud.mello.port, hostKey: cloud.mello.hostKey };
    const keyFile = cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE;
    // The seed backed up mello's sample files with the real backup-mello.sh: yesterday's work, in R2.
    const data = MELLO_DATA_DIR;
    const rels = ["user_data/user001/comfy.settings.json", "outputs/user001/sample_00001.png", "inputs/user002/reference.jpg"];
    const files: WorkFile[] = rels.map((rel) => {
      const bytes = fs.readFileSync(path.join(cloud.mello.root, data, rel));
      return { host: "mello", path: `${data}/${rel}`, sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
    });
    expect(await verifyWork(cloud, keyFile, mello, mello, files)).toEqual([]);

    // The backup of one file is corrupted in R2 (same size); mello's own copy is intact.
    const [corrupt, lost] = [files[1]!, files[2]!];
    cloud.s3.corruptObject(cloud.s3.buckets.userFiles, `mello/outputs/objects/${corrupt.sha256.slice(0, 2)}/${corrupt.sha256}`);
    // Another is lost on mello.
    fs.rmSync(path.join(cloud.mello.root, lost.path));

    const problems = await verifyWork(cloud, keyFile, mello, mello, files);
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^mello:${corrupt.path} in R2: object mello/outputs/objects/\\S+ read back hashes to [0-9a-f]{64}`)));
    expect(problems).toContain(`mello:${lost.path} missing`);
    expect(problems).toHaveLength(2);
  }, 120_000);
});
