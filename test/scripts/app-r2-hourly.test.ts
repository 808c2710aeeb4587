// The app host's hourly copy of the users' files to R2 (issue 14, item 3: "hourly backups"; before, the
// app host's hourly cron snapshotted to the SFS cache only). app-r2-hourly.sh install keeps the keys in a
// root-only file and writes one cron line; the job runs backup-mello.sh (the project's backup engine,
// every entry checked in R2), never beside another run (lock), with its log and status where the admin
// looks. Real bash, rclone and versitygw on loopback.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3("127.0.103.4");
const BUCKET = "comfyume-user-files-backups";

function appHost(): { root: string; data: string } {
  const root = tmp("app-hourly");
  const data = join(root, "home/dev/comfyume-v1/data");
  write(join(data, "user_data/user001/workflow.json"), '{"nodes":3}\n');
  write(join(data, "outputs/user001/frame-0001.png"), Buffer.alloc(40_000, 7));
  write(join(data, "inputs/user002/ref.jpg"), Buffer.alloc(9_000, 3));
  return { root, data };
}

const backupArgs = (data: string) => ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "user_data,outputs,inputs", "--bucket", BUCKET, "--prefix", "app"];

/** The cron line's command, run the way cron runs it. */
function cronJob(root: string): string {
  const cron = readFileSync(join(root, "etc/cron.d/comfyume-app-r2-hourly"), "utf8");
  const job = cron.split("\n").find((l) => /^[0-9*]/.test(l))!;
  return job.replace(/^(\S+\s+){5}root /, "");
}

function runJob(command: string): Promise<number> {
  const c = spawn("bash", ["-c", command], { env: { PATH: process.env.PATH ?? "", HOME: "/root", RCLONE_RETRIES: "1" } });
  return new Promise((r) => c.on("close", (code) => r(code ?? -1)));
}

async function manifests(dir: string): Promise<string[]> {
  const r = await rclone(s3, ["lsf", `r2:${BUCKET}/app/${dir}/manifests`]);
  return r.stdout.split("\n").filter(Boolean);
}

describe("app-r2-hourly.sh: the app host's users' files to R2 every hour", () => {
  it("install: keys in a 0600 file, one cron line without them; the job backs up every set, verified, logged", async () => {
    const { root, data } = appHost();
    const inst = await run("app-r2-hourly.sh", ["install", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root }, input: r2Secrets(s3) });
    expect(inst.code, inst.stderr).toBe(0);
    const keys = join(root, "etc/comfyume/app-r2-hourly.keys");
    expect(statSync(keys).mode & 0o777).toBe(0o600);
    const cron = readFileSync(join(root, "etc/cron.d/comfyume-app-r2-hourly"), "utf8");
    expect(cron).not.toContain(s3.secret);
    expect(cron).toMatch(/^30 \* \* \* \* root COMFYUME_ROOT=\S+ bash \S+\/app-r2-hourly\.sh run --keys-file \S+ --log \S+ -- --r2-endpoint /m);
    const again = await run("app-r2-hourly.sh", ["install", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root }, input: r2Secrets(s3) });
    expect(again.stderr).toMatch(/^cron-file\s+[\d.]+\s+unchanged/m);
    expect(again.stderr).toMatch(/^keys-file\s+[\d.]+\s+unchanged/m);

    expect(await runJob(cronJob(root))).toBe(0);
    for (const d of ["user_data", "outputs", "inputs"]) expect(await manifests(d), d).toHaveLength(1);
    const log = readFileSync(join(root, "var/log/comfyume/app-r2-hourly.log"), "utf8");
    expect(log).toMatch(/verified r2:comfyume-user-files-backups\/app\/outputs\/manifests\/\S+\.tsv/);
    expect(log).not.toContain(s3.secret);
    expect(readFileSync(join(root, "var/lib/comfyume/app-r2-hourly.status"), "utf8")).toMatch(/^last_result=ok$/m);

    // The next hour, after a user saved a file: a new manifest holding it.
    write(join(data, "user_data/user001/new.json"), '{"nodes":4}\n');
    expect(await runJob(cronJob(root))).toBe(0);
    expect(await manifests("user_data")).toHaveLength(2);
  }, 120_000);

  it("a fresh app host with no users' files yet: nothing to back up is not a failure; once a set has a backup, emptying it is", async () => {
    const root = tmp("app-hourly-fresh");
    const data = join(root, "home/dev/comfyume-v1/data");
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "user_data,outputs", "--bucket", BUCKET, "--prefix", "fresh"];
    const inst = await run("app-r2-hourly.sh", ["install", "--", ...args], { env: { COMFYUME_ROOT: root }, input: r2Secrets(s3) });
    expect(inst.code, inst.stderr).toBe(0);
    const lsManifests = async (d: string) => (await rclone(s3, ["lsf", `r2:${BUCKET}/fresh/${d}/manifests`])).stdout.split("\n").filter(Boolean);
    const logText = () => readFileSync(join(root, "var/log/comfyume/app-r2-hourly.log"), "utf8");

    // Month up on a new app host: the data directories are not there yet (the app creates them).
    expect(await runJob(cronJob(root)), logText()).toBe(0);
    expect(logText()).toMatch(/set fresh\/user_data: no files under \S+ and no backup in r2:\S+ yet: nothing to back up/);
    expect(readFileSync(join(root, "var/lib/comfyume/app-r2-hourly.status"), "utf8")).toMatch(/^last_result=ok$/m);

    // A user saves a workflow: that set is backed up, the still-empty one is not.
    write(join(data, "user_data/user001/workflow.json"), '{"nodes":1}\n');
    expect(await runJob(cronJob(root)), logText()).toBe(0);
    expect(await lsManifests("user_data")).toHaveLength(1);
    expect(await lsManifests("outputs")).toEqual([]);

    // The directory emptied (a path that moved, a lost disk): the backed-up set is refused, not skipped.
    spawnSync("rm", ["-rf", join(data, "user_data")]);
    expect(await runJob(cronJob(root))).toBe(1);
    expect(logText()).toMatch(/set 'fresh\/user_data': source \S+ is missing/);
    expect(await lsManifests("user_data")).toHaveLength(1);
  }, 120_000);

  it("never overlaps: a run finding the backup lock held fails at once naming the holder, logged, status failed", async () => {
    const { root, data } = appHost();
    const inst = await run("app-r2-hourly.sh", ["install", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root }, input: r2Secrets(s3) });
    expect(inst.code, inst.stderr).toBe(0);
    const lock = join(root, "run/lock/comfyume-backup-mello.lock");
    write(lock, "");
    // Another backup (the nightly's backup-mello.sh, or the previous hour's job) holds the lock.
    const holder = spawn("flock", ["-n", lock, "sleep", "30"]);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = await manifests("inputs");
      expect(await runJob(cronJob(root))).toBe(1);
      const log = readFileSync(join(root, "var/log/comfyume/app-r2-hourly.log"), "utf8");
      expect(log).toMatch(/another run holds the lock .*comfyume-backup-mello\.lock.*overlapping runs are refused/);
      expect(readFileSync(join(root, "var/lib/comfyume/app-r2-hourly.status"), "utf8")).toMatch(/^last_result=failed$/m);
      expect(await manifests("inputs")).toEqual(before);
    } finally {
      holder.kill();
    }
  }, 60_000);

  it("the nightly backup waits for an hourly copy holding the lock (--lock-wait), and names it when the wait runs out", async () => {
    const { root, data } = appHost();
    const lock = join(root, "run/lock/comfyume-backup-mello.lock");
    /** An hourly job holding the lock as app-r2-hourly.sh does (take_lock records script and pid) for SECONDS. */
    const hourly = (seconds: number) =>
      spawn("bash", ["-c", `source "$1"; take_lock "$2"; echo held; exec sleep ${seconds}`, "_", join(REPO, "scripts/lib/common.sh"), lock], {
        env: { PATH: process.env.PATH ?? "", COMFYUME_SCRIPT_NAME: "app-r2-hourly.sh" },
      });
    const held = (c: ReturnType<typeof hourly>) => new Promise((r) => c.stdout.once("data", r));
    const nightly = (wait: string) => run("backup-mello.sh", [...backupArgs(data), "--lock-wait", wait], { env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" }, input: r2Secrets(s3) });

    const long = hourly(60);
    try {
      await held(long);
      const before = await manifests("inputs");
      const refused = await nightly("1");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/waiting up to 1s for the lock \S+comfyume-backup-mello\.lock, held by another backup of these files \(an app host's hourly R2 copy\?\) \(app-r2-hourly\.sh, pid \d+, since /);
      expect(refused.stderr).toMatch(/FAILED: lock held by another backup of these files .*\(app-r2-hourly\.sh, pid \d+.*waited 1s for .*Let it finish and re-run/);
      expect(await manifests("inputs")).toEqual(before);
    } finally {
      long.kill();
    }

    // Held until the night is seen waiting (its log), then let go: the night then takes the lock.
    const short = hourly(600);
    await held(short);
    const log = join(root, "var/log/comfyume/backup-mello.log");
    const release = setInterval(() => {
      if (existsSync(log) && readFileSync(log, "utf8").includes("waiting up to 60s for the lock")) short.kill();
    }, 100);
    const waited = await nightly("60").finally(() => (clearInterval(release), short.kill()));
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stderr).toMatch(/waiting up to 60s for the lock .*\(app-r2-hourly\.sh, pid \d+/);
    expect((await manifests("inputs")).length).toBeGreaterThan(0);

    const bad = await nightly("soon");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--lock-wait 'soon' is not a whole number of seconds/);
  }, 120_000);

  it("refuses a missing or readable keys file, and an install without the keys, naming the fix", async () => {
    const { root, data } = appHost();
    const none = await run("app-r2-hourly.sh", ["run", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root } });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/keys file \S+ is missing: re-run 'app-r2-hourly\.sh install'/);
    const noKeys = await run("app-r2-hourly.sh", ["install", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root }, input: "" });
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toMatch(/R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY must come on stdin/);
    expect(existsSync(join(root, "etc/cron.d/comfyume-app-r2-hourly"))).toBe(false);
    const ok = await run("app-r2-hourly.sh", ["install", "--", ...backupArgs(data)], { env: { COMFYUME_ROOT: root }, input: r2Secrets(s3) });
    expect(ok.code, ok.stderr).toBe(0);
    spawnSync("chmod", ["644", join(root, "etc/comfyume/app-r2-hourly.keys")]);
    expect(await runJob(cronJob(root))).toBe(1);
    expect(readFileSync(join(root, "var/log/comfyume/app-r2-hourly.log"), "utf8")).toMatch(/is not mode 0600 \(it holds the R2 keys\): chmod 600/);
  }, 60_000);
});
