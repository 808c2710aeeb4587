// `npm run cost` and `npm run sweep` end to end: the real scripts in a child process against the
// in-process simulator on loopback, stacks read from files (--from-dir / --owned-from).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVolume, deployRunning, simRig, waitFor, type SimRig } from "./helpers";

const repo = path.resolve(__dirname, "../..");

function runScript(script: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(repo, "scripts/node-env"), ["tsx", path.join(repo, script), ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe("cost and sweep commands", () => {
  let rig: SimRig;
  let dir: string;
  let env: Record<string, string>;
  let ids: { sfs: string; instance: string; os: string; scratch: string };

  beforeAll(async () => {
    rig = await simRig();
    env = { VERDA_CLIENT_ID: rig.sim.clientId, VERDA_CLIENT_SECRET: rig.sim.clientSecret, VERDA_BASE_URL: rig.sim.baseUrl };
    const sfs = await createVolume(rig.client, { name: "comfyume-workshop-sfs", type: "NVMe_Shared", sizeGb: 220 });
    const scratch = await createVolume(rig.client, { name: "comfyume-workshop-day-scratch", sizeGb: 50 });
    const instance = await deployRunning(rig.client, { hostname: "comfyume-workshop-day", existingVolumes: [scratch.id] });
    ids = { sfs: sfs.id, instance: instance.id, os: instance.os_volume_id!, scratch: scratch.id };
    rig.sim.advanceClock(5 * 3_600_000); // the day has run for 5 h

    dir = mkdtempSync(path.join(tmpdir(), "comfyume-cost-"));
    const cfg = (values: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "object" ? { value: JSON.stringify(v), objectValue: v, secret: false } : { value: String(v), secret: false }])));
    writeFileSync(path.join(dir, "workshop-day.config.json"), cfg({
      "comfyume:phase": "workshop-day",
      "comfyume:gpu": { instanceType: "1H100.80S.32V", spot: false, osVolumeSizeGb: 100 },
      "comfyume:scratch": { lifetime: "day", sizeGb: 50, deletePermanently: false },
      "comfyume:budget": { limit: 250 },
      "comfyume:redisPassword": "ignored",
    }));
    writeFileSync(path.join(dir, "workshop-day.outputs.json"), JSON.stringify({ instanceId: ids.instance, scratchVolumeId: ids.scratch, pricePerHour: 3.56 }));
    writeFileSync(path.join(dir, "workshop-month.config.json"), cfg({ "comfyume:phase": "workshop-month", "comfyume:sfs": { sizeGb: 220 } }));
    writeFileSync(path.join(dir, "owned.json"), JSON.stringify(Object.values(ids)));
  });
  afterAll(async () => {
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("cost prints the phase price, cost to date, forecast and budget at a glance", async () => {
    const r = await runScript("scripts/cost.ts", ["--stack", "workshop-day", "--from-dir", dir, "--now", rig.sim.state().clock.now], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // 3.56 + 100 GB + 50 GB of NVMe at 0.2/730 per GB-hour
    expect(r.stdout).toMatch(/phase price per hour\s+\$3\.6011/);
    expect(r.stdout).toMatch(/phase price per day \(10 h\)\s+\$36\.01/);
    // 5 h of instance + OS + scratch (created a few ms earlier)
    expect(r.stdout).toMatch(/cost to date \(running resources\)\s+\$18\.0[01]/);
    // 8 days × 10 h × 3.6011 + the scratch's 96 h in trash after each day
    expect(r.stdout).toMatch(/forecast, this phase \(730 h period\)\s+\$298\.61/);
    expect(r.stdout).toMatch(/budget used by forecast\s+119 %  OVER/);
    expect(r.stdout).toContain("refused, forecast $298.61 of budget $250.00");
    expect(r.stdout).toContain("SFS 220 GB");
    expect(r.stdout).not.toContain("ignored");

    const json = await runScript("scripts/cost.ts", ["--stack", "workshop-day", "--from-dir", dir, "--json", "--check", "--now", rig.sim.state().clock.now], env);
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout);
    expect(report.toDate.lines.map((l: { id: string }) => l.id).sort()).toEqual([ids.instance, ids.os, ids.scratch].sort());
    expect(report.budget.verdict).toBe("over");
  }, 60_000);

  it("sweep lists an orphan, deletes only with --delete, never an owned id", async () => {
    const stray = await deployRunning(rig.client, { hostname: "out-of-band", osVolumeGb: 60 });
    await rig.client.instanceAction({ action: "delete", id: stray.id, delete_permanently: true } as never);
    await waitFor("stray gone", async () => ((await rig.client.getInstance(stray.id)) ? undefined : true));

    const list = await runScript("scripts/sweep.ts", ["--owned-from", path.join(dir, "owned.json")], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`detached OS volume\\s+out-of-band-os\\s+${stray.os_volume_id}.*\\$12\\.00`));
    expect(list.stdout).toContain("1 leftover(s) billing $12.00 a month.");
    expect(list.stdout).toContain("Nothing deleted.");
    expect((await rig.client.getVolume(stray.os_volume_id!))?.status).toBe("detached");

    const del = await runScript("scripts/sweep.ts", ["--owned-from", path.join(dir, "owned.json"), "--delete", "--permanent"], env);
    expect(del.code).toBe(0);
    expect(del.stdout).toContain("Summary: 1 deleted, 0 moved to trash, 0 skipped, 0 failed.");
    expect((await rig.client.getVolume(stray.os_volume_id!))?.status).toBe("deleted");
    for (const id of [ids.sfs, ids.os, ids.scratch]) expect((await rig.client.getVolume(id))?.status).not.toBe("deleted");

    const none = await runScript("scripts/sweep.ts", ["--owned-from", path.join(dir, "owned.json"), "--json"], env);
    expect(JSON.parse(none.stdout).leftovers).toEqual([]);
  }, 60_000);
});
