// `npm run rehearse -- --adopt`: the workshop as it runs today, adopted. Out of band first (as the
// console and their admin made them): an SFS with models in their flat layout, the app instance running
// the app with that SFS mounted, the four flat buckets. Then the stacks adopt them (sfs.adopt, app.adopt
// with app.host = verda, backups.mode existing), the admin writes the SFS marker by hand
// (docs/adopting.md), a day runs and is destroyed, the month is destroyed, and the adopted resources are
// shown untouched (same ids, same bytes, still running) with nothing re-created.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { startLocalCloud, type LocalCloud } from "../local-cloud";
import { simulateUsers, verifyInR2, type WorkFile } from "./activity";
import type { Exchange } from "../simulator/types";
import { adoptTable, mutating, since, touchedAdopted, type AdoptRow } from "./adopt-report";
import { EXISTING, appUserFileHashes, changed, expectedUserFileHashes, flatObjectHashes, makeExistingWorld, type World } from "./adopt-world";
import { slowestSteps, timeline } from "./event-log";
import { sshRun, type SshHost } from "./hosts";
import { pulumiRunner, REPO_ROOT, type PulumiRunner } from "./pulumi-runner";
import { latestManifest, latestManifestKey, manifestProblems, nightlySets, sha256, type BackupSet } from "./r2-readback";
import { phaseTable, type PhaseRecord } from "./report";
import type { RehearsalOptions, RehearsalResult } from "./run";
import { dayStack, idleStack } from "./stack-files";
import { initStack, runPhase, writeStack } from "./phase";

const MONTH = "testing-month";
const DAY = "workshop-day";

const must = (cond: boolean, what: string) => {
  if (!cond) throw new Error(what);
  return what;
};

export async function rehearseAdopt(o: RehearsalOptions): Promise<RehearsalResult> {
  const orderedMs = Math.round(o.provisioningMs / 4);
  const cloud = await startLocalCloud({
    timing: { orderedMs, provisioningMs: o.provisioningMs - orderedMs },
    speed: o.speed,
    loopbackNet: process.env.COMFYUME_REHEARSAL_NET || undefined,
    // Their four buckets, flat and dated, beside the project's own seeded backups.
    flatBuckets: true,
  });
  o.say(`local cloud up in ${(cloud.startupMs / 1000).toFixed(1)} s; flat buckets seeded like the workshop's (${Object.values(cloud.flatSeed?.keys ?? {}).flat().length} objects)`);
  const phases: PhaseRecord[] = [];
  try {
    const logDir = path.join(REPO_ROOT, ".comfyume/rehearsal");
    fs.rmSync(logDir, { recursive: true, force: true });
    const projectDir = cloud.env.COMFYUME_SIM_PROJECT_DIR;
    const run = new AdoptRun(cloud, pulumiRunner(projectDir, cloud.env, logDir, o.say), projectDir, phases, o.say);
    const dayUpMs = await run.cycle();
    const table = [phaseTable(phases, cloud.verda.state().currency), `Adopted resources, before and after (the closing note's table)\n${adoptTable(run.rows)}`].join("\n\n");
    const events = path.join(cloud.dir, "day-up.events.jsonl");
    return {
      phases,
      table,
      benchmark: { dayUpMs, provisioningMs: o.provisioningMs, restoreCopyMs: 0, ratio: dayUpMs / o.provisioningMs, diskMBps: 0, restoreBytes: 0, slowest: slowestSteps(events), timeline: timeline(events) },
      ok: phases.every((p) => p.ok) && run.rows.every((r) => r.ok),
    };
  } finally {
    await cloud.close();
  }
}

class AdoptRun {
  rows: AdoptRow[] = [];
  private world!: World;
  private work: WorkFile[] = [];
  private readonly keyFile: string;
  /** Exchanges with the Verda API before the stacks ran (the out-of-band creation). */
  private outOfBand = new Set<Exchange>();

  constructor(
    private readonly cloud: LocalCloud,
    private readonly pulumi: PulumiRunner,
    private readonly projectDir: string,
    private readonly phases: PhaseRecord[],
    private readonly say: (line: string) => void,
  ) {
    this.keyFile = cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE;
  }

  private phase(name: string, body: () => Promise<string[]>): Promise<void> {
    return runPhase(this.cloud, this.phases, this.say, name, body);
  }

  private writeStack(stack: string, config: object): void {
    writeStack(this.projectDir, "rehearsal --adopt", stack, config);
  }

  private initStack(stack: string, config: object, secrets: Record<string, string>): Promise<void> {
    return initStack(this.pulumi, this.projectDir, "rehearsal --adopt", stack, config, secrets);
  }

  /** The month: the adopted SFS, a month scratch, and (once the marker is written) the adopted app instance. */
  private month(o: { sfsSizeGb?: number; app?: "adopted" | "unnamed"; appInstanceType?: string }): object {
    const env = this.cloud.env;
    const app = o.app
      ? {
          "comfyume:app": {
            host: "verda",
            adopt: { id: this.world.appId },
            // Unnamed: the config still has the default hostname (the adoption preview names the fix).
            ...(o.app === "adopted" ? { hostname: EXISTING.appHostname } : {}),
            instanceType: o.appInstanceType ?? EXISTING.appType,
            image: EXISTING.appImage,
            location: EXISTING.location,
            // The simulated tailnet routes nothing: the workers reach Redis at the instance's address.
            redisReach: "instance-ip",
            // Its Tailscale address today (config checks it; an adopted host's identity is never restored).
            expectedTailscaleIp: "100.64.0.30",
            redisPort: Number(env.COMFYUME_SIM_REDIS_PORT),
            healthTimeoutSeconds: 30,
            projectDir: EXISTING.projectDir,
          },
        }
      : {};
    return {
      ...app,
      "comfyume:phase": MONTH,
      "comfyume:sfs": { adopt: { id: this.world.sfsId }, name: EXISTING.sfsName, sizeGb: o.sfsSizeGb ?? EXISTING.sfsSizeGb, location: EXISTING.location, protect: true },
      // Their SFS holds their models already: no loader seeds into it (docs/adopting.md).
      "comfyume:seed": { loader: false },
      "comfyume:scratch": { lifetime: "month", sizeGb: 10 },
      "comfyume:ssh": { port: Number(env.COMFYUME_SIM_SSH_PORT), perDialTimeout: 5 },
      "comfyume:timeouts": { hostKeyScanSeconds: 60 },
    };
  }

  /**
   * The day with the app on the adopted instance. The buckets hold an older "models" backup (the local
   * cloud's seeded sample models) that the adopted SFS does not have: the first night's backup would stop
   * on the shrink check (it did), so the admin accepts it once, as docs/adopting.md says.
   */
  private day(): object {
    const day = dayStack(this.cloud.env, DAY, MONTH, true) as Record<string, object>;
    return { ...day, "comfyume:backup": { ...day["comfyume:backup"], acceptShrink: ["models"] } };
  }

  private app(): SshHost & { id: string } {
    const h = this.cloud.instances().get(this.world.appId);
    if (!h) throw new Error(`the adopted app instance ${this.world.appId} has no running SSH host`);
    return { id: this.world.appId, host: h.host, port: h.port, hostKey: h.hostKey };
  }

  private worker(): SshHost & { id: string } {
    const live = this.cloud.verda.state().instances.filter((i) => i.hostname === `comfyume-${DAY}` && i.status === "running");
    must(live.length === 1, `exactly one running ${DAY} instance (found ${live.length})`);
    const h = this.cloud.instances().get(live[0].id);
    if (!h) throw new Error(`no SSH host for instance ${live[0].id}`);
    return { id: live[0].id, host: h.host, port: h.port, hostKey: h.hostKey };
  }

  private appSets(): BackupSet[] {
    return EXISTING.dataDirs.map((d) => ({ name: `app/${d}`, bucket: this.cloud.s3.buckets.userFiles, prefix: `app/${d}` }));
  }

  private async appCalls(): Promise<string> {
    return (await this.cloud.exec(this.world.appId, "cat /var/lib/comfyume-sim/calls.log")).out;
  }

  async cycle(): Promise<number> {
    const env = this.cloud.env;
    const sshKey = fs.readFileSync(this.keyFile, "utf8");
    await this.phase("existing resources (out of band)", async () => {
      this.world = await makeExistingWorld(this.cloud, env.COMFYUME_SIM_ADMIN_PUBLIC_KEY);
      this.outOfBand = new Set(this.cloud.verda.exchanges());
      const flat = Object.values(this.world.flatHashes).reduce((n, b) => n + Object.keys(b).length, 0);
      return [
        `SFS ${EXISTING.sfsName} (${this.world.sfsId.slice(0, 8)}, ${EXISTING.sfsSizeGb} GB): ${Object.keys(this.world.sfsHashes).filter((k) => k.startsWith("models/shared/")).length} models under models/shared/<type>, extra_model_paths.yaml, outputs/ (1777), cache/huggingface`,
        `app instance ${EXISTING.appHostname} (${this.world.appId.slice(0, 8)}, ${EXISTING.appType}) with the SFS mounted and ${EXISTING.services.length} services up`,
        `${flat} flat objects in the 4 buckets`,
      ];
    });

    await this.phase("idle up", async () => {
      await this.initStack("idle", idleStack(env), { "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID, "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY });
      await this.pulumi.run("idle up", ["up", "--stack", "idle", "--yes"]);
      return ["backups.mode existing: the 4 buckets taken by name"];
    });

    const monthSecrets = {
      "comfyume:sshPrivateKey": sshKey,
      "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD,
      "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY,
    };
    await this.phase(`${MONTH} preview (config differs)`, async () => {
      await this.initStack(MONTH, this.month({ sfsSizeGb: 200 }), monthSecrets);
      const before = new Set(this.cloud.verda.exchanges());
      const preview = await this.pulumi.run("month preview (differs)", ["preview", "--stack", MONTH], { allowFailure: true });
      const text = preview.stdout;
      must(preview.code !== 0, "the preview fails on the differences");
      must(text.includes(`scripts/pulumi config set --path 'comfyume:sfs.sizeGb' '220' --stack ${MONTH}`), "comfyume:sfs.sizeGb named with its fix");
      const calls = since(before, this.cloud.verda.exchanges()).filter(mutating);
      return [
        "preview failed naming comfyume:sfs.sizeGb (200 vs 220) and its fix command",
        must(calls.length === 0, `no call but reads reached Verda${calls.length ? ` (${calls.map((e) => `${e.method} ${e.url}`).join(", ")})` : ""}`),
      ];
    });

    await this.phase(`${MONTH} up (SFS adopted)`, async () => {
      this.writeStack(MONTH, this.month({}));
      await this.pulumi.run("month up (sfs)", ["up", "--stack", MONTH, "--yes"]);
      const sfsId = (await this.output(MONTH, "sfsId")).trim();
      return [must(sfsId === this.world.sfsId, `sfsId output is the adopted SFS ${this.world.sfsId.slice(0, 8)}`)];
    });

    await this.phase("SFS marker (admin, by hand)", async () => this.writeMarkerByHand());

    await this.phase(`${MONTH} up (app instance adopted)`, async () => {
      // The config still has the default hostname: the preview names the difference and its fix, changes nothing.
      this.writeStack(MONTH, this.month({ app: "unnamed" }));
      const before = new Set(this.cloud.verda.exchanges());
      const preview = await this.pulumi.run("month preview (app differs)", ["preview", "--stack", MONTH], { allowFailure: true });
      must(preview.code !== 0 && preview.stdout.includes(`scripts/pulumi config set --path 'comfyume:app.hostname' '${EXISTING.appHostname}' --stack ${MONTH}`), "the preview names comfyume:app.hostname with its fix");
      must(!since(before, this.cloud.verda.exchanges()).some(mutating), "that preview made no call but reads");
      this.writeStack(MONTH, this.month({ app: "adopted" }));
      await this.pulumi.run("month up (app)", ["up", "--stack", MONTH, "--yes"]);
      const appId = (await this.output(MONTH, "appInstanceId")).trim();
      const calls = await this.appCalls();
      const ups = calls.split("\n").filter((l) => /^docker compose .* up /.test(l)).length;
      const restoreLog = await this.cloud.exec(this.world.appId, "test -e /var/log/comfyume/restore-instance.last.log && echo present || echo absent");
      return [
        "preview first: comfyume:app.hostname named with its fix, no call but reads",
        must(appId === this.world.appId, `appInstanceId is the adopted instance ${appId.slice(0, 8)}`),
        must(ups === 1 && restoreLog.out.trim() === "absent", "nothing restored or started over the live app (1 compose up, the out-of-band one; no restore log)"),
        must(/docker compose .* ps /.test(calls), "start-app --check-only found every service running and Redis answering"),
      ];
    });

    await this.phase("config edit on the adopted (preview)", async () => {
      this.writeStack(MONTH, this.month({ sfsSizeGb: 300, app: "adopted", appInstanceType: "CPU.4V.16G" }));
      const preview = await this.pulumi.run("month preview (edit)", ["preview", "--stack", MONTH, "--json"], { allowFailure: true });
      this.writeStack(MONTH, this.month({ app: "adopted" }));
      const steps = (JSON.parse(preview.stdout.slice(preview.stdout.indexOf("{"))) as { steps?: { op: string; urn: string }[] }).steps ?? [];
      const touching = steps.filter((s) => !["same", "read"].includes(s.op));
      must(preview.code === 0, `the preview of the edit passes (exit ${preview.code})`);
      return [
        must(touching.length === 0, `no replace, update, create or delete planned at all (SFS size and app instance type edited; ${touching.map((s) => `${s.op} ${s.urn.split("::").pop()}`).join(", ") || "none"})`),
        must(/warning: adopted: comfyume:app\.instanceType/.test(preview.stdout) && /warning: adopted: comfyume:sfs\.sizeGb/.test(preview.stdout), "each edit reported as 'warning: adopted' with its fix"),
      ];
    });

    const daySecrets = { "comfyume:sshPrivateKey": sshKey, "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD, "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY };
    let dayUpMs = 0;
    await this.phase(`${DAY} up (restored)`, async () => {
      await this.initStack(DAY, this.day(), daySecrets);
      const started = Date.now();
      const up = await this.pulumi.run("day up", ["up", "--stack", DAY, "--yes", "--json"]);
      fs.writeFileSync(path.join(this.cloud.dir, "day-up.events.jsonl"), up.stdout);
      dayUpMs = Date.now() - started;
      const w = this.worker();
      const log = await this.cloud.exec(w.id, "cat /var/log/comfyume/restore-instance.last.log");
      return [
        `worker ${w.id.slice(0, 8)} running, the adopted SFS mounted (marker checked)`,
        must(log.out.includes(`Redis at ${this.world.appIp}:`), `the worker's restore reached Redis on the adopted app instance (${this.world.appIp})`),
      ];
    });

    await this.phase("user activity", async () => {
      this.work = await simulateUsers(this.cloud.dir, this.keyFile, this.worker(), this.app(), 3, EXISTING.dataDir, "app");
      return [`${this.work.length} files on the worker's scratch and the adopted app instance`];
    });

    await this.phase(`${DAY} destroy`, async () => {
      const sets = [...nightlySets(this.cloud, []), ...this.appSets()];
      const before = new Map(sets.map((s) => [s.name, latestManifestKey(this.cloud, s)]));
      const id = this.worker().id;
      await this.pulumi.run("day destroy", ["destroy", "--stack", DAY, "--yes", "--run-program"]);
      const problems = manifestProblems(sets.map((s) => latestManifest(this.cloud, s)), before);
      return [
        must(problems.length === 0, `${sets.length} sets backed up, each with a new non-empty manifest in R2${problems.length ? `: ${problems.join("; ")}` : ""}`),
        must(!this.cloud.verda.state().instances.some((i) => i.id === id), "worker deleted after the backup"),
        must(this.cloud.instances().has(this.world.appId), "adopted app instance still running"),
      ];
    });

    await this.phase(`${MONTH} destroy`, async () => this.destroyMonth());
    await this.phase("adopted resources untouched", async () => this.checkUntouched());
    return dayUpMs;
  }

  private async output(stack: string, name: string): Promise<string> {
    return (await this.pulumi.run(`output ${name}`, ["stack", "output", name, "--stack", stack])).stdout;
  }

  /** docs/adopting.md step 3, as the admin runs it: the scripts onto the app instance, then mount-sfs --write-marker. */
  private async writeMarkerByHand(): Promise<string[]> {
    const target = (await this.output(MONTH, "sfsMountTarget")).trim();
    const app = this.app();
    const knownHosts = path.join(this.cloud.dir, "known_hosts-admin");
    fs.writeFileSync(knownHosts, `[${app.host}]:${app.port} ${app.hostKey}\n`);
    const ssh = `ssh -i ${this.keyFile} -p ${app.port} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
    await bash(`tar -C scripts -czf - host lib | ${ssh} root@${app.host} 'mkdir -p /opt/comfyume && tar -C /opt/comfyume -xzf -'`, REPO_ROOT);
    await sshRun(this.cloud.dir, this.keyFile, app, `/opt/comfyume/host/mount-sfs.sh --target '${target}' --mount-point /mnt/sfs --sfs-id '${this.world.sfsId}' --write-marker --no-fstab`);
    const marker = fs.readFileSync(path.join(this.cloud.sfsDir(this.world.sfsId), ".comfyume/sfs-id"), "utf8").trim();
    return [must(marker === this.world.sfsId, `marker <sfs>/.comfyume/sfs-id = ${marker.slice(0, 8)} written on the app instance (mount-sfs.sh --write-marker --no-fstab)`)];
  }

  private async destroyMonth(): Promise<string[]> {
    const refused = await this.pulumi.run("month destroy (protected)", ["destroy", "--stack", MONTH, "--yes"], { allowFailure: true });
    must(refused.code !== 0 && /protected/.test(refused.stdout), "pulumi destroy stops at the adopted resources (protected)");
    must(this.cloud.instances().has(this.world.appId), "the refused destroy left the app instance running");
    const appBefore = new Map(this.appSets().map((s) => [s.name, latestManifestKey(this.cloud, s)]));
    // docs/adopting.md: to let go of them, unprotect; the destroy then forgets them (retainOnDelete).
    await this.pulumi.run("month unprotect", ["state", "unprotect", "--all", "--yes", "--stack", MONTH]);
    await this.pulumi.run("month destroy", ["destroy", "--stack", MONTH, "--yes"]);
    const stale = this.appSets().filter((s) => {
      const key = latestManifestKey(this.cloud, s);
      return !key || key === appBefore.get(s.name);
    });
    must(stale.length === 0, `the app host's backup-before-delete wrote new manifests (stale: ${stale.map((s) => s.name).join(", ") || "none"})`);
    const problems = verifyInR2(this.cloud, this.work.filter((f) => f.host === "mello"), EXISTING.dataDir);
    must(problems.length === 0, `the app host's files in R2: ${problems.join("; ")}`);
    return [
      "destroy refused first (protected); after 'state unprotect --all' it ran",
      `the adopted app host's backup-before-delete ran anyway: ${this.appSets().length} sets with new manifests, today's files read back from R2 (SHA-256)`,
      "the stack forgot the adopted SFS and instance (retainOnDelete); the month's own scratch went to the trash",
    ];
  }

  private async checkUntouched(): Promise<string[]> {
    const w = this.world;
    const state = this.cloud.verda.state();
    const sfs = state.volumes.find((v) => v.id === w.sfsId);
    const sfsAfter = Object.fromEntries(Object.keys(w.sfsHashes).map((k) => [k, hashFile(path.join(this.cloud.sfsDir(w.sfsId), k))]));
    const app = state.instances.find((i) => i.id === w.appId);
    const users = await appUserFileHashes(this.cloud, w.appId);
    const running = (await this.cloud.exec(w.appId, "ls /var/lib/comfyume-sim/docker | grep -c '^running-'")).out.trim();
    const flatAfter = flatObjectHashes(this.cloud);
    const flatChanged = Object.entries(w.flatHashes).flatMap(([b, keys]) => changed(keys, flatAfter[b] ?? {}).map((k) => `${b}/${k}`));
    const flatCount = Object.values(w.flatHashes).reduce((n, b) => n + Object.keys(b).length, 0);
    const touches = touchedAdopted(since(this.outOfBand, this.cloud.verda.exchanges()), w);
    const sharedEver = state.volumes.filter((v) => v.type === "NVMe_Shared");
    const appsEver = state.instances.filter((i) => i.hostname === EXISTING.appHostname);
    this.rows = [
      {
        resource: `SFS ${EXISTING.sfsName}`,
        before: `${w.sfsId.slice(0, 8)}, ${EXISTING.sfsSizeGb} GB, ${Object.keys(w.sfsHashes).length} files`,
        after: `${sfs?.id.slice(0, 8) ?? "gone"}, ${sfs?.size ?? "?"} GB, ${sfs && !("deleted_at" in sfs) ? "live" : "DELETED"}; ${Object.keys(w.sfsHashes).length - changed(w.sfsHashes, sfsAfter).length}/${Object.keys(w.sfsHashes).length} files same SHA-256`,
        ok: !!sfs && !("deleted_at" in sfs) && sfs.size === EXISTING.sfsSizeGb && sfs.name === EXISTING.sfsName && changed(w.sfsHashes, sfsAfter).length === 0,
      },
      {
        resource: `app instance ${EXISTING.appHostname}`,
        before: `${w.appId.slice(0, 8)}, ${EXISTING.appType}, running, ${EXISTING.services.length} services, ${Object.keys(users).length} users' files`,
        after: `${app?.id.slice(0, 8) ?? "gone"}, ${app?.instance_type ?? "?"}, ${app?.status ?? "gone"}, ${running} services, ${Object.keys(users).length - changed(expectedUserFileHashes(), users).length}/${Object.keys(users).length} users' files same SHA-256`,
        ok: app?.status === "running" && app.instance_type === EXISTING.appType && running === String(EXISTING.services.length) && changed(expectedUserFileHashes(), users).length === 0,
      },
      {
        resource: "4 flat buckets (their objects)",
        before: `${flatCount} objects`,
        after: `${flatCount - flatChanged.length}/${flatCount} byte-identical${flatChanged.length ? ` (changed: ${flatChanged.join(", ")})` : ""}`,
        ok: flatChanged.length === 0,
      },
      {
        resource: "re-created or changed at Verda",
        before: "—",
        after: `SFS volumes ever: ${sharedEver.length}; instances named ${EXISTING.appHostname} ever: ${appsEver.length}; mutating calls naming an adopted id: ${touches.length ? touches.join(", ") : "none"}`,
        ok: sharedEver.length === 1 && appsEver.length === 1 && touches.length === 0,
      },
    ];
    const bad = this.rows.filter((r) => !r.ok).map((r) => `${r.resource}: ${r.after}`);
    must(bad.length === 0, `adopted resources untouched${bad.length ? `: ${bad.join("; ")}` : ""}`);
    return ["same ids, same bytes (SFS files, users' files, flat objects), app still running; nothing re-created (table below)"];
  }
}

function hashFile(file: string): string {
  return fs.existsSync(file) ? sha256(fs.readFileSync(file)) : "";
}

/** A shell pipeline as the admin types it (bash, in `cwd`); rejects with its stderr on failure. */
function bash(command: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-o", "pipefail", "-c", command], { cwd, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`'${command.slice(0, 80)}…' failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}
