// The rehearsal's simulated users write where the backups read: mello's user files under mello's
// root (COMFYUME_ROOT/home/dev/comfyume/data, backup-mello's default), not this machine's /home.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { simulateUsers, verifyWork } from "../../sim/rehearsal/activity";
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
      const local = path.join(cloud.mello.root, f.path);
      expect(fs.existsSync(local), `${f.path} under mello's root`).toBe(true);
      expect(createHash("sha256").update(fs.readFileSync(local)).digest("hex")).toBe(f.sha256);
    }
    expect(await verifyWork(cloud.dir, keyFile, mello, mello, files)).toEqual([]);
  }, 120_000);
});
