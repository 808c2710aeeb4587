// The app host's backup-before-delete: the exact command the hook's `delete` runs (appBackupCommand),
// run with bash and the real host scripts on a sandboxed app host root against a real S3 endpoint on
// loopback (127.0.112.0/24). It must exit 0 only after the snapshot, the SFS cache and the users' files
// are in R2 and read back; with R2 down, refusing the keys, or a data directory missing it must exit
// non-zero (which stops the destroy before the instance is deleted), naming the cause.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appBackupCommand, nightlyLockWaitSeconds, type AppBackupHookArgs } from "../../components/app-host-backup";
import { startS3Server, type S3Server } from "../../sim/local-cloud/s3-server";
import { BUCKETS, REPO, makeInstanceRoot, tmp, write } from "../scripts/helpers";

const NET = "127.0.112";
const KEY_ID = "APPHOSTKEYID";
const SECRET = `app-host-secret-${randomBytes(6).toString("hex")}`;
const USERS = "comfyume-user-files-backups";
const BUCKET_NAMES = { models: BUCKETS[0], cache: BUCKETS[1], workerContainer: BUCKETS[2], userFiles: USERS };

let s3: S3Server;
let s3Dir: string;
beforeAll(async () => {
  s3Dir = tmp("apphost-s3");
  s3 = await startS3Server({ dir: s3Dir, buckets: BUCKETS, accessKeyId: KEY_ID, secretAccessKey: SECRET, host: `${NET}.5` });
});
afterAll(async () => {
  await s3?.close();
  rmSync(s3Dir, { recursive: true, force: true });
});

/** An app host root: identity, the project at /home/dev/comfyume-v1 with its users' files, an SFS with a cache. */
function appHostRoot(): { root: string; files: Record<string, Buffer> } {
  const root = tmp("apphost");
  makeInstanceRoot(root, "100.64.0.20");
  const project = join(root, "home/dev/comfyume-v1");
  write(join(project, "docker-compose.yml"), "services:\n  redis:\n    image: redis:7-alpine\n");
  write(join(project, ".env"), "REDIS_HOST=redis\n", 0o600);
  const files: Record<string, Buffer> = {};
  for (const rel of ["user_data/user001/workflow.json", "outputs/user001/final_cut.mp4", "inputs/user002/reference.png"]) {
    files[rel] = randomBytes(4096 + rel.length);
    write(join(project, "data", rel), files[rel]);
  }
  write(join(root, "mnt/sfs/cache/huggingface/model.bin"), randomBytes(2048));
  write(join(root, "mnt/sfs/.comfyume/sfs-id"), "sfs-0001\n");
  return { root, files };
}

function hookArgs(root: string, dataDirs = ["user_data", "outputs", "inputs"]): AppBackupHookArgs {
  return {
    target: undefined as never,
    instance: undefined as never,
    after: [],
    r2: undefined as never,
    paths: { sfsMount: join(root, "mnt/sfs"), scriptsDir: join(REPO, "scripts"), projectDir: join(root, "home/dev/comfyume-v1"), dataDir: join(root, "home/dev/comfyume-v1/data") },
    dataDirs,
    backupSetName: "comfyume-workshop-app",
    hostEnv: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_LOW_LEVEL_RETRIES: "1" },
    backupSeconds: 120,
    shrink: { accept: [] },
  };
}

function runHook(command: string, secrets: string, onStderr?: (text: string) => void): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", command], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", LANG: "C.UTF-8" }, stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    });
    child.stdin.end(secrets);
  });
}

const secrets = (secret = SECRET) => `R2_ACCESS_KEY_ID=${KEY_ID}\nR2_SECRET_ACCESS_KEY=${secret}\n`;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The newest manifest of set `app/<dir>` as stored by the S3 server: path -> object key. */
function newestManifest(dir: string): Map<string, { sha256: string; key: string }> {
  const manifests = join(s3.dataDir, USERS, "app", dir, "manifests");
  const newest = readdirSync(manifests).sort().pop() as string;
  const rows = readFileSync(join(manifests, newest), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
  return new Map(rows.map((l) => l.split("\t")).map((f) => [f[3], { sha256: f[0], key: f[4] }]));
}

describe("the app host's backup-before-delete", () => {
  it("backs up the snapshot, the SFS cache and every user file, each read back, then exits 0", async () => {
    const { root, files } = appHostRoot();
    const r = await runHook(appBackupCommand(hookArgs(root), s3.endpoint, BUCKET_NAMES), secrets());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain(SECRET);
    // A fresh snapshot of the app host in the SFS cache, and the cache set in R2.
    expect(readFileSync(join(root, "mnt/sfs/cache/backups/comfyume-workshop-app/latest"), "utf8").trim()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{6}Z$/);
    expect(r.stderr).toMatch(/verified r2:comfyume-cache-backups\/cache\/manifests\//);
    for (const [rel, content] of Object.entries(files)) {
      const [dir, ...rest] = rel.split("/");
      const entry = newestManifest(dir).get(rest.join("/"));
      expect(entry?.sha256, rel).toBe(sha(content));
      expect(sha(readFileSync(join(s3.dataDir, USERS, "app", dir, entry!.key)))).toBe(sha(content));
    }
  }, 300_000);

  it("waits for an hourly R2 copy that holds the lock when the night starts (half the deadline, at most 15 min)", async () => {
    const { root, files } = appHostRoot();
    expect(appBackupCommand(hookArgs(root), s3.endpoint, BUCKET_NAMES)).toMatch(/backup-mello\.sh' .*--lock-wait '60'$/);
    expect(nightlyLockWaitSeconds(7200)).toBe(900);
    const lock = join(root, "run/lock/comfyume-backup-mello.lock");
    // The hourly job holds the lock until the night is seen waiting for it, then finishes.
    const hourly = spawn("bash", ["-c", 'source "$1"; take_lock "$2"; echo held; exec sleep 600', "_", join(REPO, "scripts/lib/common.sh"), lock], {
      env: { PATH: process.env.PATH ?? "", COMFYUME_SCRIPT_NAME: "app-r2-hourly.sh" },
    });
    await new Promise((r) => hourly.stdout.once("data", r));
    const r = await runHook(appBackupCommand(hookArgs(root), s3.endpoint, BUCKET_NAMES), secrets(), (text) => {
      if (/waiting up to 60s for the lock/.test(text)) hourly.kill();
    }).finally(() => hourly.kill());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/waiting up to 60s for the lock .*\(app-r2-hourly\.sh, pid \d+/);
    const [rel, content] = Object.entries(files)[0];
    const [dir, ...rest] = rel.split("/");
    expect(newestManifest(dir).get(rest.join("/"))?.sha256).toBe(sha(content));
  }, 300_000);

  it("a host without Tailscale (restoreSkip tailscale) is backed up without it; with Tailscale expected, its absence fails", async () => {
    const { root } = appHostRoot();
    rmSync(join(root, "var/lib/tailscale"), { recursive: true, force: true });
    const expected = await runHook(appBackupCommand(hookArgs(root), s3.endpoint, BUCKET_NAMES), secrets());
    expect(expected.code).not.toBe(0);
    expect(expected.stderr).toMatch(/var\/lib\/tailscale is missing.*--skip tailscale/);
    const without = await runHook(appBackupCommand({ ...hookArgs(root), backupSkip: ["tailscale"] }, s3.endpoint, BUCKET_NAMES), secrets());
    expect(without.code, without.stderr).toBe(0);
    expect(without.stderr).toMatch(/verified r2:comfyume-user-files-backups\/app\/user_data\/manifests\//);
  }, 300_000);

  it("exits non-zero, naming the cause, when R2 is down", async () => {
    const { root } = appHostRoot();
    const r = await runHook(appBackupCommand(hookArgs(root), `http://${NET}.6:9`, BUCKET_NAMES), secrets());
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FAILED/);
  }, 300_000);

  it("exits non-zero when R2 refuses the keys", async () => {
    const { root } = appHostRoot();
    const r = await runHook(appBackupCommand(hookArgs(root), s3.endpoint, BUCKET_NAMES), secrets("wrong-secret"));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FAILED/);
    expect(r.stderr).not.toContain("wrong-secret");
  }, 300_000);

  it("exits non-zero when a configured data directory is missing (nothing silently skipped)", async () => {
    const { root } = appHostRoot();
    const r = await runHook(appBackupCommand(hookArgs(root, ["user_data", "outputs", "inputs", "uploads"]), s3.endpoint, BUCKET_NAMES), secrets());
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/uploads/);
  }, 300_000);
});
