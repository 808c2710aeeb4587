// The admin's evening and morning with plain `pulumi`: `pulumi up --stack workshop-day` and `pulumi destroy --stack
// workshop-day`, the real CLI on PATH with only what the README's one-time steps set (test/support/plain-shell.ts:
// no PULUMI_BACKEND_URL, no COMFYUME_PULUMI_COMMAND, no policy pack, a fresh PULUMI_HOME; the backend from
// Pulumi.yaml, the passphrase from PULUMI_CONFIG_PASSPHRASE_FILE), run from a clone's root, against the local
// simulated cloud (the Verda simulator, real sshd machines on 127.0.106.0/24, the S3 stand-in for R2). The same day
// goes through scripts/pulumi first, in the same clone: its defaults land on the same state directory and passphrase
// file, so both drive the same stacks. Both must create the same resources with the same outputs, and both destroys
// must run the backup-before-delete commands (every nightly set gets a new manifest in R2, written before the
// instance is deleted, the day's user files among them), then delete the instance and its OS volume and keep the SFS and the month's scratch.
// The day is the rehearsal's (sim/rehearsal/stack-files.ts), the smallest honest one: 1 MiB sample models, the
// month's scratch, a month seeded once through the loader; idle and month are set up through scripts/pulumi.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { latestManifestKey, manifestProblems, latestManifest, nightlySets } from "../../sim/rehearsal/r2-readback";
import { melloDataDir, simulateUsers, verifyInR2 } from "../../sim/rehearsal/activity";
import { dayStack, idleStack, monthStack, stackFile } from "../../sim/rehearsal/stack-files";
import { pulumiToolchainReady, type PulumiRun } from "../support/pulumi-cli";
import { plainPulumi, plainShellEnv, projectFixture, runIn } from "../support/plain-shell";

const DAY = "workshop-day";
const MONTH = "testing-month";
const TIMEOUT_MS = 900_000;

type Runner = (args: string[], stdin?: string) => Promise<PulumiRun>;

interface DayOutcome {
  resources: string[];
  outputKeys: string[];
  instanceId: string;
  upStatus: number;
  destroyStatus: number;
  destroyOutput: string;
  afterDestroy: string[];
  /** Sets without a new, non-empty manifest after the destroy (empty: all backed up). */
  backupProblems: string[];
  /** The day's user files (on the scratch and on mello) not found in R2 byte for byte after the destroy. */
  workNotInR2: string[];
  workFiles: number;
  instanceLeft: boolean;
  osVolumeLeft: boolean;
  sfsKept: number;
  scratchKept: number;
}

describe.runIf(pulumiToolchainReady())("plain `pulumi up/destroy --stack workshop-day` against the simulated cloud", () => {
  let cloud: LocalCloud;
  let dir: string;
  let home: string;
  let plain: DayOutcome;
  let wrapped: DayOutcome;

  const ok = async (run: Runner, args: string[], stdin?: string) => {
    const r = await run(args, stdin);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${r.status}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    return r;
  };
  const writeStack = (stack: string, config: object) => {
    const file = path.join(dir, "stacks", `Pulumi.${stack}.yaml`);
    fs.writeFileSync(file, stackFile(`plain-pulumi-day: ${stack}`, config, fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""));
  };
  const initStack = async (run: Runner, stack: string, config: object, secrets: Record<string, string>) => {
    await ok(run, ["stack", "init", stack]);
    writeStack(stack, config);
    for (const [key, value] of Object.entries(secrets)) await ok(run, ["config", "set", "--stack", stack, "--secret", key], value);
  };
  const melloData = () => melloDataDir(dayStack(cloud.env, DAY, MONTH));
  const live = () => cloud.verda.state().volumes.filter((v) => !("deleted_at" in v));

  /** The admin's day: up, then the nightly destroy; what each left behind. */
  const day = async (run: Runner): Promise<DayOutcome> => {
    const sets = nightlySets(cloud);
    const up = await run(["up", "--yes", "--skip-preview", "--stack", DAY]);
    if (up.status !== 0) throw new Error(`up failed:\n${up.stdout.slice(-4000)}\n${up.stderr.slice(-2000)}`);
    const exported = JSON.parse((await ok(run, ["stack", "export", "--stack", DAY])).stdout) as { deployment: { resources?: { type: string; urn: string }[] } };
    const resources = (exported.deployment.resources ?? []).map((r) => `${r.type} ${r.urn.split("::").pop()}`).sort();
    const outputs = JSON.parse((await ok(run, ["stack", "output", "--json", "--stack", DAY])).stdout) as Record<string, unknown>;
    const instanceId = String(outputs.instanceId);
    const osVolumeId = cloud.verda.state().instances.find((i) => i.id === instanceId)?.os_volume_id;
    // The users' day: files on the scratch and on mello (the backups refuse an empty set as a lost mount).
    const host = cloud.instances().get(instanceId);
    if (!host) throw new Error(`no SSH host for instance ${instanceId}`);
    const work = await simulateUsers(cloud.dir, cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE, { host: host.host, port: host.port, hostKey: host.hostKey }, cloud.mello, 2, melloData());
    const before = new Map(sets.map((set) => [set.name, latestManifestKey(cloud, set)]));
    const destroy = await run(["destroy", "--yes", "--skip-preview", "--stack", DAY]);
    const after = JSON.parse((await ok(run, ["stack", "export", "--stack", DAY])).stdout) as { deployment: { resources?: unknown[] } };
    return {
      resources,
      outputKeys: Object.keys(outputs).sort(),
      instanceId,
      upStatus: up.status,
      destroyStatus: destroy.status,
      destroyOutput: `${destroy.stdout}\n${destroy.stderr}`,
      afterDestroy: (after.deployment.resources ?? []).map(String),
      backupProblems: manifestProblems(sets.map((set) => latestManifest(cloud, set)), before),
      workNotInR2: verifyInR2(cloud, work, melloData()),
      workFiles: work.length,
      instanceLeft: cloud.verda.state().instances.some((i) => i.id === instanceId),
      osVolumeLeft: live().some((v) => v.id === osVolumeId),
      sfsKept: live().filter((v) => v.type === "NVMe_Shared").length,
      scratchKept: live().filter((v) => v.type === "NVMe" && !v.is_os_volume).length,
    };
  };

  beforeAll(async () => {
    cloud = await startLocalCloud({ loopbackNet: "127.0.106", modelSizesMiB: [1, 1, 1] });
    dir = projectFixture("comfyume-plain-day-", true);
    home = fs.mkdtempSync(path.join(os.tmpdir(), "comfyume-plain-day-home-"));
    // The Verda credentials as the admin exports them; the same for both ways of running Pulumi.
    const verda = { VERDA_BASE_URL: cloud.env.VERDA_BASE_URL, VERDA_CLIENT_ID: cloud.env.VERDA_CLIENT_ID, VERDA_CLIENT_SECRET: cloud.env.VERDA_CLIENT_SECRET };
    const plainEnv = plainShellEnv(dir, home, verda, randomBytes(24).toString("base64url"));
    // scripts/pulumi with its own defaults: run from this clone, it takes <clone>/.pulumi-state and <clone>/.pulumi-passphrase.
    const wrapperEnv: NodeJS.ProcessEnv = { ...plainEnv, PATH: process.env.PATH };
    delete wrapperEnv.PULUMI_CONFIG_PASSPHRASE_FILE;
    const wrapper: Runner = (args, stdin) => runIn(dir, wrapperEnv, path.join(dir, "scripts/pulumi"), [...args, "--non-interactive"], { stdin, timeoutMs: TIMEOUT_MS });
    const bare: Runner = (args, stdin) => plainPulumi(dir, plainEnv, args, { stdin, timeoutMs: TIMEOUT_MS });

    const env = cloud.env;
    const sshKey = fs.readFileSync(env.COMFYUME_SIM_ADMIN_KEY_FILE, "utf8");
    await initStack(wrapper, "idle", idleStack(env), { "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID, "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY });
    await ok(wrapper, ["up", "--yes", "--skip-preview", "--stack", "idle"]);
    await initStack(wrapper, MONTH, monthStack(env, MONTH, { loader: true, protect: true }), { "comfyume:sshPrivateKey": sshKey });
    await ok(wrapper, ["up", "--yes", "--skip-preview", "--stack", MONTH]);
    writeStack(MONTH, monthStack(env, MONTH, { loader: false, protect: true }));
    await ok(wrapper, ["up", "--yes", "--skip-preview", "--stack", MONTH]);
    await initStack(wrapper, DAY, dayStack(env, DAY, MONTH), {
      "comfyume:sshPrivateKey": sshKey,
      "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD,
      "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY,
    });

    wrapped = await day(wrapper);
    plain = await day(bare);
  }, 3 * TIMEOUT_MS);

  afterAll(async () => {
    await cloud?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (home) fs.rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it("keeps the stacks in the clone's .pulumi-state (Pulumi.yaml) for both, with no login", () => {
    const stacks = fs.readdirSync(path.join(dir, ".pulumi-state", ".pulumi", "stacks", "comfyume")).filter((f) => f.endsWith(".json")).sort();
    expect(stacks).toEqual(["idle.json", `${MONTH}.json`, `${DAY}.json`].sort());
    expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false);
  });

  it("`pulumi up` creates the same resources and outputs as scripts/pulumi up", () => {
    expect(plain.upStatus).toBe(0);
    expect(plain.resources).toContain("pulumi-nodejs:dynamic/remote:Command worker-backup-before-delete");
    expect(plain.resources).toEqual(wrapped.resources);
    expect(plain.outputKeys).toContain("instanceId");
    expect(plain.outputKeys).toEqual(wrapped.outputKeys);
    expect(plain.instanceId).not.toBe(wrapped.instanceId);
  });

  it("`pulumi destroy` backs up every set to R2 before it deletes the instance, as scripts/pulumi destroy", () => {
    for (const outcome of [wrapped, plain]) {
      expect(outcome.destroyStatus, outcome.destroyOutput.slice(-3000)).toBe(0);
      expect(outcome.backupProblems).toEqual([]);
      expect(outcome.workFiles).toBeGreaterThan(0);
      expect(outcome.workNotInR2).toEqual([]);
      const backedUp = outcome.destroyOutput.search(/worker-backup-before-delete deleted/);
      const instanceGoes = outcome.destroyOutput.search(/worker-instance deleting/);
      expect(backedUp).toBeGreaterThan(-1);
      expect(instanceGoes).toBeGreaterThan(backedUp);
      expect(outcome.afterDestroy).toEqual([]);
      expect({ instanceLeft: outcome.instanceLeft, osVolumeLeft: outcome.osVolumeLeft, sfsKept: outcome.sfsKept, scratchKept: outcome.scratchKept }).toEqual({ instanceLeft: false, osVolumeLeft: false, sfsKept: 1, scratchKept: 1 });
    }
  });
});
