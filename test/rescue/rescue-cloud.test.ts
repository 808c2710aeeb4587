// The rescue against the local simulated cloud (Verda simulator, real SSH hosts running the real
// host scripts, versitygw as R2): a worker with users' files on its scratch disappears out of band;
// the rescue starts a CPU instance with the scratch, backs it up, and every file reads back from
// R2 byte for byte; the rescue instance goes, the scratch stays. Unhappy paths: a live worker is
// refused with nothing created; R2 down fails the rescue, deletes the rescue instance, keeps the
// scratch, and names the cause.
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { rescueVerda } from "../../infra/rescue";
import type { RescuePaths } from "../../infra/rescue/remote";
import { rescueScratch, type RescueOptions } from "../../infra/rescue/run";
import type { RescueTarget } from "../../infra/rescue/state";
import type { VerdaClient } from "../../infra/verda/client";
import { until, verdaClient } from "../local-cloud/helpers";
import { manifests, readBack, waitVolume, workerWithUserFiles, type Worker } from "./helpers";

let cloud: LocalCloud;
let api: VerdaClient;
let worker: Worker;
let paths: RescuePaths;
const lines: string[] = [];
const log = (l: string) => lines.push(l);

function target(r2Endpoint = cloud.s3.endpoint): RescueTarget {
  return {
    stack: "test-day",
    instance: { urn: "urn:pulumi:test-day::p::x$pulumi-nodejs:dynamic/verda:Instance::worker-instance", instanceId: worker.id, hostname: "comfyume-test-day", locationCode: "FIN-01", sshKeyIds: [worker.keyId] },
    scratchVolumeId: worker.scratchId,
    scratchIsDayScoped: true,
    ssh: worker.ssh,
    r2: { endpoint: r2Endpoint, userFilesBucket: cloud.s3.buckets.userFiles, accessKeyId: cloud.s3.accessKeyId, secretAccessKey: cloud.s3.secretAccessKey },
  };
}

function options(): RescueOptions {
  return { paths, waits: { pollMs: 25, timeoutMs: 30_000 }, timeouts: { prepareSeconds: 60, backupSeconds: 120 }, log, confirm: async () => true };
}

const verda = () => rescueVerda({ clientId: cloud.env.VERDA_CLIENT_ID!, clientSecret: cloud.env.VERDA_CLIENT_SECRET!, baseUrl: cloud.env.VERDA_BASE_URL });

/** A loopback port nobody listens on: R2 unreachable. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Rescue instances deployed so far, and the delete actions sent for them (from the recorded API exchanges). */
function rescueCalls() {
  const ex = cloud.verda.exchanges();
  const deployed = ex
    .filter((e) => e.method === "POST" && e.url.endsWith("/instances") && e.status === 202 && JSON.parse(e.requestBody).hostname === "comfyume-test-day-rescue")
    .map((e) => ({ id: e.responseBody.replace(/"/g, "").trim(), body: JSON.parse(e.requestBody) as { existing_volumes?: string[] } }));
  const deletes = ex.filter((e) => e.method === "PUT" && e.url.endsWith("/instances")).map((e) => JSON.parse(e.requestBody) as { action: string; id: string; volume_ids?: string[] });
  return { deployed, deletes };
}

/** Deleted (every delete request naming its OS volume only, never the scratch), and gone. */
async function deletedWithoutScratch(id: string): Promise<void> {
  const del = rescueCalls().deletes.filter((d) => d.action === "delete" && d.id === id);
  expect(del.length).toBeGreaterThanOrEqual(1);
  for (const d of del) {
    expect(d.volume_ids).toHaveLength(1);
    expect(d.volume_ids).not.toContain(worker.scratchId);
  }
  await until("rescue instance gone", async () => ((await api.getInstance(id)) ? undefined : true), 10_000);
}

/** Exactly one new rescue instance: created with the scratch attached, deleted without it, gone. */
async function rescueInstanceCleanedUp(deployedBefore: number): Promise<void> {
  const { deployed } = rescueCalls();
  expect(deployed).toHaveLength(deployedBefore + 1);
  const last = deployed.at(-1)!;
  expect(last.body.existing_volumes).toEqual([worker.scratchId]);
  await deletedWithoutScratch(last.id);
}

/** An instance holding the scratch, deployed by the test (a leftover rescue, or someone else's). */
async function holdScratch(hostname: string): Promise<string> {
  const id = await api.deployInstance({
    instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname, description: "holds the scratch", location_code: "FIN-01",
    ssh_key_ids: [worker.keyId], existing_volumes: [worker.scratchId],
  });
  await until(`${hostname} running`, async () => ((await api.getInstance(id))?.status === "running" ? true : undefined), 10_000);
  return id;
}

async function scratchIsSafe(): Promise<void> {
  const v = await api.getVolume(worker.scratchId);
  expect(v?.deleted_at).toBeUndefined();
  expect(v?.status).toBe("detached");
}

beforeAll(async () => {
  cloud = await startLocalCloud({
    loopbackNet: "127.93.0",
    timing: { orderedMs: 30, provisioningMs: 60, volumeCreateMs: 20, volumeAttachMs: 20, instanceActionMs: 20, instanceDeleteMs: 20 },
    modelSizesMiB: [1, 1, 1],
  });
  api = verdaClient(cloud);
  paths = { scriptsDir: "/opt/comfyume", scratchMount: "/mnt/scratch", hostEnv: {} };
  worker = await workerWithUserFiles(cloud, api, paths, log);
}, 180_000);

afterAll(async () => {
  await cloud?.close();
});

describe("rescue of an orphaned scratch (local cloud)", () => {
  it("refuses while the worker is alive, creating nothing", async () => {
    const before = cloud.verda.state().instances.length;
    await expect(rescueScratch(target(), verda(), options())).rejects.toThrow(/still running at Verda: nothing to rescue.*scripts\/pulumi destroy --stack test-day/s);
    expect(cloud.verda.state().instances.length).toBe(before);
    expect(rescueCalls().deployed).toHaveLength(0);
    expect((await api.getInstance(worker.id))?.status).toBe("running");
  });

  it("fails with R2 down: names the cause, deletes the rescue instance, keeps the scratch", async () => {
    // Out of band, as in the Verda console: the worker goes with its OS volume, the scratch is detached.
    await api.instanceAction({ action: "delete", id: worker.id, volume_ids: [worker.osVolumeId], delete_permanently: true });
    await waitVolume(api, worker.scratchId, "detached");
    const manifestsBefore = manifests(cloud, "scratch/inputs").length + manifests(cloud, "scratch/outputs").length;
    const err = await rescueScratch(target(`http://127.0.0.1:${await deadPort()}`), verda(), options()).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/rescue of stack test-day failed: backup-mello\.sh \(scratch inputs,outputs\) on the rescue instance exited with code 1/);
    expect(err?.message).toMatch(/--- last lines of stderr ---/);
    expect(err?.message).toMatch(/cannot reach R2 bucket 'comfyume-user-files-backups'/);
    expect(err?.message).toMatch(/fix: .*npm run rescue -- --stack test-day/);
    expect(err?.message).toMatch(/Rescue instance \S+ deleted; scratch \S+ untouched and detached\. The state was not edited\./);
    expect(err?.message).not.toContain(cloud.s3.secretAccessKey);
    await rescueInstanceCleanedUp(0);
    await scratchIsSafe();
    expect(manifests(cloud, "scratch/inputs").length + manifests(cloud, "scratch/outputs").length).toBe(manifestsBefore);
  });

  it("refuses at once while another live instance holds the scratch, creating nothing", async () => {
    const other = await holdScratch("someone-else");
    const deployedBefore = rescueCalls().deployed.length;
    await expect(rescueScratch(target(), verda(), options())).rejects.toThrow(new RegExp(`attached to instance ${other} \\(someone-else, running\\)`));
    expect(rescueCalls().deployed).toHaveLength(deployedBefore);
    await api.instanceAction({ action: "delete", id: other, volume_ids: [(await api.getInstance(other))!.os_volume_id!], delete_permanently: true });
    await waitVolume(api, worker.scratchId, "detached");
  });

  it("never formats: a blank volume is refused by prepare-scratch --expect-data and stays blank", async () => {
    const blank = await api.createVolume({ type: "NVMe", name: "blank-scratch", size: 5, location_code: "FIN-01" });
    await waitVolume(api, blank, "detached");
    const gone = { ...target(), scratchVolumeId: blank, instance: { ...target().instance, instanceId: "00000000-0000-4000-8000-000000000000" } };
    const deployedBefore = rescueCalls().deployed.length;
    const err = await rescueScratch(gone, verda(), options()).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/prepare-scratch\.sh --expect-data on the rescue instance exited with code 1/);
    const deployed = rescueCalls().deployed.at(-1)!;
    expect(rescueCalls().deployed).toHaveLength(deployedBefore + 1);
    await until("rescue instance gone", async () => ((await api.getInstance(deployed.id)) ? undefined : true), 10_000);
    const probe = spawnSync("blkid", ["-p", cloud.scratchImage(blank)], { encoding: "utf8" });
    expect(probe.stdout).toBe(""); // still no filesystem signature
    expect((await api.getVolume(blank))?.status).toBe("detached");
  });

  it("a rescue instance that ends in error is deleted, nothing else touched", async () => {
    cloud.verda.setFaults({ type: "instance_outcome", outcome: "error", hostname: "comfyume-test-day-rescue", count: 1 });
    const deployedBefore = rescueCalls().deployed.length;
    await expect(rescueScratch(target(), verda(), options())).rejects.toThrow(/rescue instance \S+ ended error instead of running[\s\S]*Rescue instance \S+ deleted; scratch \S+ untouched/);
    const failed = rescueCalls().deployed.at(-1)!;
    expect(rescueCalls().deployed).toHaveLength(deployedBefore + 1);
    const del = rescueCalls().deletes.filter((d) => d.action === "delete" && d.id === failed.id);
    expect(del).toHaveLength(1);
    expect(del[0]!.volume_ids).not.toContain(worker.scratchId);
    await scratchIsSafe();
  });

  it("Verda refusing the rescue instance's delete after a verified backup: the message names it and the fix, the state is not edited", async () => {
    cloud.verda.setFaults({ type: "http", method: "PUT", path: "/v1/instances", status: 400, message: "simulated refusal", count: 1 });
    const err = await rescueScratch(target(), verda(), options()).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/the backup of scratch \S+ is verified in R2, but the rescue instance remains/);
    expect(err?.message).toMatch(/could NOT be deleted \(.*simulated refusal.*\): delete it in the Verda console, ticking ONLY its OS volume, never the scratch/);
    expect(err?.message).toMatch(/The state was not edited/);
    cloud.verda.clearFaults();
  });

  it("backs the scratch up (after removing the instance the last attempt left): every file reads back from R2, the rescue instance and its OS volume go, the scratch stays", async () => {
    const leftover = rescueCalls().deployed.at(-1)!.id;
    expect((await api.getInstance(leftover))?.status).toBe("running");
    const deployedBefore = rescueCalls().deployed.length;
    const result = await rescueScratch(target(), verda(), options());
    await deletedWithoutScratch(leftover);
    await rescueInstanceCleanedUp(deployedBefore);
    expect(result.instanceType).toBe("CPU.4V.16G"); // the cheapest CPU type of the catalogue
    expect(result.osVolumeDeleted).toBe(true);
    expect(result.backupSummary).toMatch(/verified/);
    expect(readBack(cloud, "inputs")).toEqual(worker.files.inputs);
    expect(readBack(cloud, "outputs")).toEqual(worker.files.outputs);
    expect(await api.getInstance(result.rescueInstanceId)).toBeUndefined();
    const os = cloud.verda.state().volumes.filter((v) => v.is_os_volume && v.instance_id === null && !("deleted_at" in v));
    expect(os.map((v) => v.name)).not.toContain("comfyume-test-day-rescue-os");
    await scratchIsSafe();
    expect(lines.join("\n")).not.toContain(cloud.s3.secretAccessKey);
  });
});
