// What the faults act on: the local cloud, the gate in front of its S3 endpoint, the day's worker,
// the month's volumes, and the mechanisms each fault uses (triggers on S3 writes, the hourly job,
// a full SFS, the rescue command).
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalCloud } from "../../local-cloud";
import type { TcpGate } from "../../local-cloud/tcp-gate";
import { VerdaClient } from "../../../infra/verda/client";
import { sshRun } from "../hosts";
import { REPO_ROOT } from "../pulumi-runner";
import { errorLines } from "./table";

export class FaultContext {
  /** Facts about the injection for the current row (drained by the run after each row). */
  notes: string[] = [];
  /** Injection failures for the current row: the fault did not happen, so the row cannot pass. */
  misfires: string[] = [];
  /** The day's current instance (set after each successful morning up). */
  worker?: { id: string; host: string; port: number; hostKey: string };

  constructor(
    readonly cloud: LocalCloud,
    readonly gate: TcpGate,
    readonly env: Record<string, string>,
    readonly dayStack: string,
    readonly scratchVolumeId: string,
    readonly sfsVolumeId: string,
  ) {}

  workerId(): string {
    if (!this.worker) throw new Error("no day instance is up");
    return this.worker.id;
  }

  onWorker(command: string): Promise<string> {
    if (!this.worker) throw new Error("no day instance is up");
    return sshRun(this.cloud.dir, this.env.COMFYUME_SIM_ADMIN_KEY_FILE, this.worker, command);
  }

  async until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private volume(id: string) {
    return this.cloud.verda.state().volumes.find((v) => v.id === id);
  }

  scratchStatus(): string | undefined {
    return this.volume(this.scratchVolumeId)?.status;
  }

  sfsPseudoPath(): string | undefined {
    return (this.volume(this.sfsVolumeId) as { pseudo_path?: string } | undefined)?.pseudo_path;
  }

  /**
   * Calls `act` once, as soon as the S3 endpoint stores the first new object of a user-files set
   * (the nightly backup is mid-upload). Returns the stopper `during` expects.
   */
  onUserFileUpload(act: (bucket: string, key: string) => Promise<void>): () => Promise<void> {
    const bucket = this.cloud.s3.buckets.userFiles;
    const seen = this.cloud.s3.events().length;
    let fired: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (fired) return;
      const hit = this.cloud.s3.events().slice(seen).find((e) => e.bucket === bucket && e.event.includes("ObjectCreated") && !e.key.includes("/manifests/"));
      if (hit) {
        this.notes.push(`fault fired as ${hit.key} was stored`);
        fired = act(bucket, hit.key).catch((e: unknown) => void this.misfires.push(`the fault failed to act: ${String(e)}`));
      }
    }, 10);
    return async () => {
      clearInterval(timer);
      if (!fired) this.misfires.push("the fault never fired: no user-file object was uploaded during the command");
      await fired;
    };
  }

  /** Flips the first bytes of an object in the S3 server's storage (same size; the ETag it reports stays). */
  async corruptObject(bucket: string, key: string): Promise<void> {
    this.cloud.s3.corruptObject(bucket, key);
  }

  async runHourlyJobOnce(): Promise<void> {
    const runs = await this.cloud.runCronJobs(this.workerId()).catch(() => []);
    this.notes.push(`the hourly job ran once before the night: exit ${runs.map((r) => r.code).join(", ") || "(none)"}`);
  }

  /** The hourly job, fired again and again while the nightly backup runs. */
  hourlyJobLoop(): () => Promise<void> {
    const id = this.workerId();
    let stop = false;
    const codes: number[] = [];
    const loop = (async () => {
      while (!stop) {
        try {
          codes.push(...(await this.cloud.runCronJobs(id)).map((r) => r.code));
        } catch {
          return; // the host is gone: the destroy got past the backup
        }
      }
    })();
    return async () => {
      stop = true;
      await loop;
      if (!codes.length) this.misfires.push("the hourly job never ran during the destroy");
      else this.notes.push(`the hourly job ran ${codes.length} time(s) during the destroy (exit codes ${[...new Set(codes)].join(", ")})`);
    };
  }

  /** The SFS fills up: the local cloud shrinks its file system to what it holds and a filler takes the rest. */
  fillSfs(): void {
    this.cloud.faults.sfsFull(this.sfsVolumeId, true);
    const free = spawnSync("df", ["--output=avail", "-B1", this.cloud.sfsDir(this.sfsVolumeId)], { encoding: "utf8" }).stdout.trim().split("\n").pop()?.trim();
    if (free !== "0") this.misfires.push(`the SFS still has ${free} bytes free after the filler`);
    else this.notes.push("SFS full: 0 bytes free");
  }

  /** Space back: the filler goes, the SFS gets its size back (what was written meanwhile stays). */
  unfillSfs(): void {
    this.cloud.faults.sfsFull(this.sfsVolumeId, false);
  }

  /** After "empty set": the scratch is mounted again (its files were on the volume all along). */
  async remountScratchIfGone(): Promise<void> {
    if (!this.worker || !this.cloud.instances().has(this.worker.id)) return;
    // As prepare-scratch finds it: by id (DEV_BY_ID_DIR is where the local cloud's hosts keep /dev/disk/by-id).
    const device = `"\${DEV_BY_ID_DIR:-/dev/disk/by-id}"/virtio-${this.scratchVolumeId.replace(/-/g, "").slice(-12)}`;
    // The mount (shim) keeps whatever the app wrote on the OS disk aside, as a real mount hides it.
    await this.onWorker(`mountpoint -q /mnt/scratch || mount ${device} /mnt/scratch 2>&1`);
  }

  /** As if deleted in Verda's console (or evicted): through the public API, volumes kept. */
  async deleteWorkerOutOfBand(): Promise<void> {
    const id = this.workerId();
    const api = new VerdaClient({ clientId: this.cloud.verda.clientId, clientSecret: this.cloud.verda.clientSecret, baseUrl: this.cloud.verda.baseUrl });
    await api.instanceAction({ action: "delete", id } as never);
    await this.until(() => !this.cloud.verda.state().instances.some((i) => i.id === id), "the instance to be gone");
  }

  /** `npm run rescue -- --stack <day> --yes --project-dir <sim project>` when the project has it. */
  async rescue(): Promise<string[]> {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> };
    if (!pkg.scripts?.rescue) return ["rescue: not available (no npm run rescue)"];
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      // --yes: no terminal to ask; --project-dir: the local cloud's project (its state and stack files).
      const args = ["run", "-s", "rescue", "--", "--stack", this.dayStack, "--yes", "--project-dir", this.env.COMFYUME_SIM_PROJECT_DIR];
      const child = spawn("npm", args, {
        cwd: REPO_ROOT,
        env: { ...process.env, ...this.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let text = "";
      child.stdout.on("data", (c: Buffer) => (text += c.toString()));
      child.stderr.on("data", (c: Buffer) => (text += c.toString()));
      const timer = setTimeout(() => child.kill("SIGTERM"), 600_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, text });
      });
    });
    fs.writeFileSync(path.join(REPO_ROOT, ".comfyume/rehearsal-faults/rescue.log"), out.text);
    return [out.code === 0 ? "rescue: ran (exit 0)" : `rescue: FAILED (exit ${out.code}): ${errorLines(out.text).keyLine || out.text.trim().split("\n").pop()}`];
  }
}
