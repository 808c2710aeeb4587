// A simulated cloud for `npm run status`: the Verda simulator and a local S3 (R2) on loopback, and
// a Pulumi file backend with the phase stacks, whose state is written with `pulumi stack import`
// (the real CLI) to hold the ids of what the scenario creates at the simulated Verda.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { startLocalS3, type LocalS3 } from "../../sim/local-cloud/s3";
import { createVolume, deployRunning, simRig, waitFor, type SimRig } from "../money/helpers";
import { repoRoot } from "../support/pulumi-cli";

export const STATUS_NET_HOST = "127.0.105.1";
export const VERDA_SECRET = "verda-status-test-secret-3f9a1c";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export class StatusScenario {
  readonly dir = mkdtempSync(path.join(tmpdir(), "comfyume-status-"));
  readonly env: NodeJS.ProcessEnv;
  rig!: SimRig;
  s3!: LocalS3;
  ids: Record<string, string> = {};

  constructor() {
    writeFileSync(path.join(this.dir, "Pulumi.yaml"), "name: comfyume-infra\nruntime: nodejs\n");
    mkdirSync(path.join(this.dir, "state"));
    this.env = { ...process.env, PULUMI_BACKEND_URL: `file://${this.dir}/state`, PULUMI_CONFIG_PASSPHRASE: "status-test-passphrase", NO_COLOR: "1" };
    delete this.env.VERDA_CLIENT_ID;
    delete this.env.VERDA_CLIENT_SECRET;
    delete this.env.VERDA_BASE_URL;
  }

  /** `startTime`: the simulated clock's start (the status is taken at the simulator's now). */
  async start(startTime?: string): Promise<void> {
    this.rig = await simRig({ host: STATUS_NET_HOST, clientSecret: VERDA_SECRET, startTime });
    this.s3 = await startLocalS3(mkdtempSync(path.join(this.dir, "s3-")));
  }

  async close(): Promise<void> {
    await this.s3?.close();
    await this.rig?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const env = { ...this.env, ...opts.env };
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
      const child = spawn(cmd, args, { cwd: this.dir, env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(opts.input ?? "");
    });
  }

  async pulumi(args: string[], input?: string): Promise<Run> {
    const r = await this.run(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"], { input });
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")}: ${r.stderr}`);
    return r;
  }

  /** `npm run status` as the admin runs it, against this backend. */
  status(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    const now = this.rig.sim.state().clock.now;
    return this.run(path.join(repoRoot, "scripts/node-env"), ["tsx", path.join(repoRoot, "scripts/status.ts"), "--project-dir", this.dir, "--now", now, ...args], { env, timeoutMs: 90_000 });
  }

  /** A stack with this config, and a state holding these resource ids and outputs. */
  async stack(name: string, config: Record<string, unknown>, state: { ids?: string[]; outputs?: Record<string, unknown>; secretOutputs?: Record<string, string> } | undefined, secrets: Record<string, string> = {}): Promise<void> {
    const file = path.join(this.dir, `Pulumi.${name}.yaml`);
    if (!this.ids[`stack:${name}`]) {
      await this.pulumi(["stack", "init", name]);
      this.ids[`stack:${name}`] = name;
      const salt = /encryptionsalt: (\S+)/.exec(readFileSync(file, "utf8"))![1]!;
      writeFileSync(file, stringify({ encryptionsalt: salt, config }));
      for (const [key, value] of Object.entries(secrets)) await this.pulumi(["config", "set", "--secret", "--stack", name, key, value]);
    }
    await this.importState(name, state);
  }

  async importState(name: string, state: { ids?: string[]; outputs?: Record<string, unknown>; secretOutputs?: Record<string, string> } | undefined): Promise<void> {
    const salt = /encryptionsalt: (\S+)/.exec(readFileSync(path.join(this.dir, `Pulumi.${name}.yaml`), "utf8"))![1]!;
    const sig = "4dabf18193072939515e22adb298388d";
    const secretValue = (v: string) => ({ [sig]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });
    const urn = (type: string, n: string) => `urn:pulumi:${name}::comfyume-infra::${type}::${n}`;
    const provider = `${urn("pulumi:providers:pulumi-nodejs", "default")}::provider-id`;
    const resources = state
      ? [
          { urn: urn("pulumi:pulumi:Stack", `comfyume-infra-${name}`), custom: false, type: "pulumi:pulumi:Stack", outputs: { ...state.outputs, ...Object.fromEntries(Object.entries(state.secretOutputs ?? {}).map(([k, v]) => [k, secretValue(v)])) } },
          ...(state.ids?.length ? [{ urn: urn("pulumi:providers:pulumi-nodejs", "default"), custom: true, id: "provider-id", type: "pulumi:providers:pulumi-nodejs" }] : []),
          ...(state.ids ?? []).map((id, i) => ({ urn: urn("pulumi-nodejs:dynamic:Resource", `resource-${i}`), custom: true, id, type: "pulumi-nodejs:dynamic:Resource", provider, outputs: { id } })),
        ]
      : [];
    const deployment = { version: 3, deployment: { manifest: { time: new Date().toISOString(), magic: "", version: "" }, secrets_providers: { type: "passphrase", state: { salt } }, resources } };
    const file = path.join(this.dir, `${name}.state.json`);
    writeFileSync(file, JSON.stringify(deployment));
    await this.pulumi(["stack", "import", "--stack", name, "--file", file]);
  }

  /** The idle stack: R2 outputs (keys secret), the watchdog on, Verda credentials in its config. */
  async idle(watchdog: Record<string, unknown> = { enabled: true, cutoff: "22:00", timezone: "UTC" }): Promise<void> {
    await this.stack(
      "idle",
      { "comfyume:phase": "idle", "verda:clientId": this.rig.sim.clientId, "verda:baseUrl": this.rig.sim.baseUrl, "comfyume:watchdog": watchdog },
      { outputs: { r2Endpoint: this.s3.endpoint, bucketNames: this.s3.buckets }, secretOutputs: { r2AccessKeyId: this.s3.accessKeyId, r2SecretAccessKey: this.s3.secretAccessKey } },
      { "verda:clientSecret": VERDA_SECRET },
    );
  }

  async month(budget = 100): Promise<void> {
    const sfs = await createVolume(this.rig.client, { name: "comfyume-workshop-sfs", type: "NVMe_Shared", sizeGb: 220 });
    this.ids.sfs = sfs.id;
    await this.stack("workshop-month", { "comfyume:phase": "workshop-month", "comfyume:sfs": { sizeGb: 220 }, "comfyume:budget": { limit: budget } }, { ids: [sfs.id], outputs: { sfsId: sfs.id, sfsSizeGb: 220 } });
  }

  /** The morning `up`: instance + day scratch at Verda, the day stack's state holding them. */
  async dayUp(budget = 400): Promise<void> {
    const scratch = await createVolume(this.rig.client, { name: "comfyume-workshop-day-scratch", sizeGb: 50 });
    const instance = await deployRunning(this.rig.client, { hostname: "comfyume-workshop-day", existingVolumes: [scratch.id, this.ids.sfs!] });
    Object.assign(this.ids, { scratch: scratch.id, instance: instance.id, os: instance.os_volume_id! });
    const config = { "comfyume:phase": "workshop-day", "comfyume:gpu": { instanceType: "1H100.80S.32V", spot: false, osVolumeSizeGb: 100 }, "comfyume:scratch": { lifetime: "day", sizeGb: 50, deletePermanently: false }, "comfyume:budget": { limit: budget } };
    await this.stack("workshop-day", config, { ids: [instance.id, instance.os_volume_id!, scratch.id], outputs: { instanceId: instance.id, scratchVolumeId: scratch.id } });
  }

  /** The nightly destroy's effect: backups written, instance (with its OS volume) deleted, scratch to trash, the state emptied. */
  async dayDestroyed(): Promise<void> {
    await this.rig.client.instanceAction({ action: "delete", id: this.ids.instance!, volume_ids: [this.ids.os!], delete_permanently: true });
    await waitFor("instance gone", async () => ((await this.rig.client.getInstance(this.ids.instance!))?.status === "running" ? undefined : true), 10_000);
    await this.rig.client.deleteVolume(this.ids.scratch!, false);
    await this.importState("workshop-day", undefined);
  }

  /** A verified night as backup-to-r2 leaves it: objects, then a dated manifest naming them. */
  async backup(at: Date, sets: Array<{ bucket: string; prefix: string; files: Array<{ path: string; size: number }> }>): Promise<void> {
    const stamp = at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z").replace(/^(\d{4})(\d\d)(\d\d)/, "$1-$2-$3");
    for (const s of sets) {
      const lines = s.files.map((f, i) => `${(i + 1).toString(16).padStart(64, "0")}\t${"0".repeat(32)}\t${f.size}\t${f.path}\tobjects/00/${(i + 1).toString(16).padStart(64, "0")}`);
      const manifest = ["# comfyume-manifest v2: sha256\tmd5\tsize\tpath\tkey", ...lines].join("\n") + "\n";
      const r = await this.rcloneTo(["rcat", `r2:${s.bucket}/${s.prefix}/manifests/${stamp}.tsv`], manifest);
      if (r.code !== 0) throw new Error(`writing a manifest: ${r.stderr}`);
    }
  }

  rcloneTo(args: string[], input: string): Promise<Run> {
    return this.run("rclone", args, {
      input,
      env: { AWS_CA_BUNDLE: undefined, RCLONE_CONFIG: "/dev/null", RCLONE_CONFIG_R2_TYPE: "s3", RCLONE_CONFIG_R2_PROVIDER: "Cloudflare", RCLONE_CONFIG_R2_REGION: "auto", RCLONE_CONFIG_R2_ENDPOINT: this.s3.endpoint, RCLONE_CONFIG_R2_ACCESS_KEY_ID: this.s3.accessKeyId, RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: this.s3.secretAccessKey },
    });
  }
}
