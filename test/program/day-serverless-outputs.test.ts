// A serverless day (inference = serverless) with the app on the month's app host: no GPU instance backs
// anything up, so the day declares the nightly copy of <sfs>/outputs (what the containers wrote) on the
// app host, which mounts the SFS. The destroy returns the deployments to zero first (no writer left, no
// GPU billing while the backup runs), then backs the outputs up, verified; a failure stops the destroy.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRETS, dayValues } from "../support/fixtures";
import { REMOTE_COMMAND, STACK_OUTPUTS, isVerda, runProgram, unwrapSecret, type ProgramRun } from "../support/mock-program";

const APP_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAppAppAppAppAppAppAppAppAppAppAppAppAppApp";
const SERVERLESS = { image: "ghcr.io/ahelme/comfyume-worker:v1", deployments: [{ gpu: "H200", spot: true }] };
const DEPLOYMENT = "comfyume-workshop-worker-h200-spot";

const monthBefore = { ...STACK_OUTPUTS.month };
let run: ProgramRun;
beforeAll(async () => {
  Object.assign(STACK_OUTPUTS.month, {
    appHost: "verda",
    appIp: "203.0.113.20",
    appHostKey: APP_HOST_KEY,
    appDataDir: "/home/dev/comfyume-v1/data",
    appDataDirs: ["user_data", "outputs"],
    serverlessDeployments: [DEPLOYMENT],
  });
  const values: Record<string, unknown> = {
    ...dayValues(),
    "comfyume:inference": "serverless",
    "comfyume:serverless": SERVERLESS,
    "comfyume:app": { host: "verda" },
    "comfyume:sshPrivateKey": SECRETS.sshPrivateKey,
  };
  for (const key of ["comfyume:redisPassword", "comfyume:tailscaleAuthKey", "comfyume:restore", "comfyume:gpu"]) delete values[key];
  run = await runProgram("workshop-day", values, ["verda:clientSecret", "comfyume:sshPrivateKey"]);
});
afterAll(() => {
  for (const k of Object.keys(STACK_OUTPUTS.month)) delete STACK_OUTPUTS.month[k];
  Object.assign(STACK_OUTPUTS.month, monthBefore);
});

describe("serverless day with the app on the month's app host", () => {
  it("backs up <sfs>/outputs from the app host with the nightly destroy (verified, host key pinned, its own set)", () => {
    const hook = run.byName("sfs-outputs-backup-before-delete");
    expect(hook.type).toBe(REMOTE_COMMAND);
    const del = String(hook.inputs.delete);
    expect(del).toMatch(/backup-mello\.sh' --r2-endpoint '\S+' --data-dir '\/mnt\/sfs' --dirs 'outputs' --bucket 'comfyume-user-files-backups' --prefix 'sfs' --require-mount --state-dir '\/mnt\/sfs\/\.comfyume\/backup-state-outputs'/);
    const connection = unwrapSecret(hook.inputs.connection) as { host: string; hostKey: string };
    expect(connection.host).toBe("203.0.113.20");
    expect(connection.hostKey).toBe(APP_HOST_KEY);
    expect(hook.opts.retainOnDelete).toBeFalsy();
    // R2 keys on stdin only.
    expect(del).not.toContain(String(STACK_OUTPUTS.idle.r2SecretAccessKey));
  });

  it("scales to zero before the backup: each DeploymentScaling depends on the hook (destroy runs in reverse)", () => {
    const hook = run.byName("sfs-outputs-backup-before-delete").resource;
    const scalings = run.resources.filter((r) => isVerda(r, "DeploymentScaling"));
    expect(scalings).toHaveLength(1);
    for (const s of scalings) expect([s.opts.dependsOn].flat()).toContain(hook);
  });

  it("also backs up the app host's users' files, as an instance day does", () => {
    expect(String(run.byName("app-files-backup-before-delete").inputs.delete)).toContain("--prefix 'app'");
  });

  it("each nightly backup waits for an hourly R2 copy holding the app host's lock (half its deadline, at most 15 min)", () => {
    for (const name of ["sfs-outputs-backup-before-delete", "app-files-backup-before-delete"]) {
      const wait = /backup-mello\.sh' .* --lock-wait '(\d+)'$/.exec(String(run.byName(name).inputs.delete));
      expect(wait, name).not.toBeNull();
      expect(Number(wait![1])).toBeGreaterThan(0);
      expect(Number(wait![1])).toBeLessThanOrEqual(900);
    }
  });

  it("runs the two backups on the app host one after the other (backup-mello.sh holds one lock per host)", () => {
    // Destroy deletes dependents first: the app files, then <sfs>/outputs; never both at once.
    const outputs = run.byName("sfs-outputs-backup-before-delete").resource;
    expect([run.byName("app-files-backup-before-delete").opts.dependsOn].flat()).toContain(outputs);
  });
});
