// The rescue through the real Pulumi engine on the local cloud: a day-shaped stack is up with
// users' files on its scratch; its instance is deleted out of band; the rescue reads the state,
// backs the scratch up (read back from R2), and removes exactly the gone instance, its guard and
// the instance-side backup hook from the state; then `pulumi destroy` completes, mello's hook
// still runs, and only now does the scratch go.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { pulumiCli, rescueSettings } from "../../infra/rescue";
import { pinHostKey, runRemote } from "../../infra/rescue/remote";
import { nameOf } from "../../infra/rescue/state";
import type { VerdaClient } from "../../infra/verda/client";
import { until, verdaClient } from "../local-cloud/helpers";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";
import { readBack, sha256, waitVolume } from "./helpers";

const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the rescue engine test: the Pulumi toolchain is missing (npm run setup)");

const DAY = "rescue-day";
let cloud: LocalCloud;
let api: VerdaClient;
let sandbox: PulumiSandbox;
let env: NodeJS.ProcessEnv;

async function pulumi(args: string[], timeoutMs = 240_000) {
  return sandbox.runAsync(args, { env, timeoutMs });
}

beforeAll(async () => {
  if (!ready) return;
  cloud = await startLocalCloud({
    loopbackNet: "127.94.0",
    timing: { orderedMs: 30, provisioningMs: 60, volumeCreateMs: 20, volumeAttachMs: 20, instanceActionMs: 20, instanceDeleteMs: 20 },
    modelSizesMiB: [1, 1, 1],
  });
  api = verdaClient(cloud);
  sandbox = pulumiSandbox(path.join(__dirname, "fixtures/day"));
  env = {
    ...cloud.env, COMFYUME_REPO: repoRoot, VERDA_POLL_INTERVAL_MS: "50", VERDA_RETRY_BASE_MS: "50",
    // `rescue-day` names a day stack (environment `rescue`), but this fixture is a day's shape, not the
    // program: its hook runs backup-mello, so the guardrails (tested in test/policy) would refuse it.
    COMFYUME_NO_POLICY: "1",
    RESCUE_E2E_PRIVATE_KEY: readFileSync(cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE!, "utf8"),
    // The sandbox's own state and passphrase, not the local cloud's project.
    PULUMI_BACKEND_URL: sandbox.env.PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE: sandbox.env.PULUMI_CONFIG_PASSPHRASE,
  };
}, 120_000);

afterAll(async () => {
  sandbox?.cleanup();
  await cloud?.close();
});

/** `npm run rescue` itself, as an operator runs it. */
async function rescueWithCli(): Promise<string[]> {
  const child = spawn(path.join(repoRoot, "scripts/node-env"), ["tsx", "scripts/rescue.ts", "--stack", DAY, "--yes", "--json", "--project-dir", sandbox.dir], { cwd: repoRoot, env });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  expect(code, stderr).toBe(0);
  expect(`${stdout}${stderr}`).not.toContain(cloud.s3.secretAccessKey);
  const report = JSON.parse(stdout) as { removedFromState: { urn: string }[]; stateBackup: string; next: string; rescueInstanceId: string };
  expect(report.next).toBe(`scripts/pulumi destroy --stack ${DAY}`);
  expect(readFileSync(report.stateBackup, "utf8")).not.toContain(cloud.s3.secretAccessKey);
  rmSync(report.stateBackup);
  expect(await api.getInstance(report.rescueInstanceId)).toBeUndefined();
  return report.removedFromState.map((r) => nameOf(r.urn));
}

describe.runIf(ready)("rescue through the engine (local cloud)", () => {
  it("backs up an orphaned scratch, edits the state, and the destroy then completes", async () => {
    for (const stack of ["idle", DAY]) {
      expect((await pulumi(["stack", "init", stack])).status).toBe(0);
      const up = await pulumi(["up", "--stack", stack, "--yes", "--skip-preview"]);
      expect(up.status, `${up.stdout}\n${up.stderr}`).toBe(0);
    }
    const outputs = JSON.parse((await pulumi(["stack", "output", "--stack", DAY, "--json"])).stdout) as Record<string, string>;
    const scratchId = outputs.scratchVolumeId!;

    // Users' work on the scratch, never backed up.
    const key = readFileSync(cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE!, "utf8");
    const worker = await pinHostKey(outputs.instanceIp!, { user: "root", port: Number(cloud.env.COMFYUME_SIM_SSH_PORT), privateKey: key, dialErrorLimit: 3, perDialTimeout: 5 }, () => undefined);
    const content = Buffer.from(`frame data ${Date.now()}\n`.repeat(2000));
    await runRemote(worker, "write", "mkdir -p /mnt/scratch/outputs/user007 && cat > /mnt/scratch/outputs/user007/take1.mp4 && echo ref > /mnt/scratch/inputs/ref.txt", { stdin: content.toString(), timeoutSeconds: 60 });

    // Out of band: the instance is deleted in the console (its OS volume with it, the scratch detached).
    const osVolume = (await api.getInstance(outputs.instanceId!))!.os_volume_id!;
    await api.instanceAction({ action: "delete", id: outputs.instanceId!, volume_ids: [osVolume], delete_permanently: true });
    await waitVolume(api, scratchId, "detached");

    // The plain destroy stops before touching the scratch, and says what to do.
    const blocked = await pulumi(["destroy", "--stack", DAY, "--yes", "--skip-preview"]);
    expect(blocked.status).not.toBe(0);
    expect(`${blocked.stdout}\n${blocked.stderr}`).toMatch(/npm run rescue -- --stack rescue-day/);
    expect((await api.getVolume(scratchId))?.status).toBe("detached");
    expect(existsSync(path.join(cloud.mello.root, "opt/rescue-e2e/mello-hook-ran"))).toBe(false);

    const cli = pulumiCli(sandbox.dir, env);
    expect((await pulumi(["config", "set", "--path", "comfyume:paths.scratchMount", "/mnt/rescued", "--stack", DAY])).status).toBe(0);
    expect(rescueSettings(cli, DAY).paths).toMatchObject({ scratchMount: "/mnt/rescued", scriptsDir: "/opt/comfyume" });
    const removed = await rescueWithCli();
    expect(removed.sort()).toEqual(["worker-backup-before-delete", "worker-guard", "worker-instance"]);
    expect(readBack(cloud, "outputs")).toEqual({ "user007/take1.mp4": sha256(content) });
    expect(readBack(cloud, "inputs")).toEqual({ "ref.txt": sha256("ref\n") });
    expect((await api.getVolume(scratchId))?.status).toBe("detached");
    const left = JSON.parse((await pulumi(["stack", "export", "--stack", DAY])).stdout) as { deployment: { resources: { urn: string }[] } };
    const leftNames = left.deployment.resources.map((r) => nameOf(r.urn));
    expect(leftNames).toEqual(expect.arrayContaining(["worker-scratch", "worker-backup-mello-before-delete", "worker-prepare-scratch", "worker-scripts-files", "worker-host-key"]));
    expect(leftNames).not.toContain("worker-instance");
    expect(JSON.stringify(left)).not.toContain(cloud.s3.secretAccessKey);
    expect((await api.getVolume(scratchId))?.deleted_at).toBeUndefined();

    const destroy = await pulumi(["destroy", "--stack", DAY, "--yes", "--skip-preview"]);
    expect(destroy.status, `${destroy.stdout}\n${destroy.stderr}`).toBe(0);
    expect(existsSync(path.join(cloud.mello.root, "opt/rescue-e2e/mello-hook-ran"))).toBe(true);
    await until("scratch deleted by the destroy", async () => {
      const v = await api.getVolume(scratchId);
      return !v || v.status === "deleted" ? true : undefined;
    });
  }, 600_000);
});
