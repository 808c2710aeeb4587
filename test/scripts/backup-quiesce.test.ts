// The nightly backup (backup-to-r2.sh) against the hourly instance backup (backup-instance.sh),
// both real scripts on one sandboxed host root, with a real S3 endpoint on loopback: one lock
// shared by both, a bounded wait with a message naming the holder, half-written snapshots left
// out. The hourly job is slowed by a `tar` on PATH that sleeps once before doing the real work.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeInstanceRoot, r2Secrets, rclone, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();

const CACHE = "comfyume-cache-backups";

/** A host with one hourly snapshot already in its SFS cache, and a changed project (so the next hourly run writes a new one). */
async function hostWithSnapshot(): Promise<{ host: string; sfs: string; set: string }> {
  const host = tmp("host");
  makeInstanceRoot(host, "100.101.102.103");
  const sfs = join(host, "mnt/sfs");
  write(join(sfs, ".keep"), "");
  const first = await run("backup-instance.sh", ["--sfs", sfs, "--min-free-mb", "1"], { env: { COMFYUME_ROOT: host } });
  expect(first.code, first.stderr).toBe(0);
  writeFileSync(join(host, "home/dev/comfyume/README.md"), "# changed during the day\n");
  await new Promise((r) => setTimeout(r, 1100)); // the next snapshot gets a new stamp
  return { host, sfs, set: join(sfs, "cache/backups/verda-worker") };
}

/** Starts the hourly job with a tar that first sleeps `seconds`; resolves once its .partial snapshot exists. */
async function startSlowHourly(host: string, sfs: string, set: string, seconds: number) {
  const bin = tmp("slowtar");
  write(join(bin, "tar"), `#!/usr/bin/env bash\nif [[ ! -e ${bin}/slept ]]; then touch ${bin}/slept; sleep ${seconds}; fi\nexec /usr/bin/tar "$@"\n`, 0o755);
  const before = new Set(readdirSync(set));
  const done = run("backup-instance.sh", ["--sfs", sfs, "--min-free-mb", "1"], { env: { COMFYUME_ROOT: host, PATH: `${bin}:${process.env.PATH}` } });
  for (let i = 0; i < 200 && !readdirSync(set).some((f) => f.endsWith(".partial") && !before.has(f)); i++) await new Promise((r) => setTimeout(r, 50));
  expect(readdirSync(set).some((f) => f.endsWith(".partial") && !before.has(f))).toBe(true);
  return { done }; // wrapped: an async function returning the promise itself would wait for it
}

async function latestManifest(): Promise<string> {
  const names = (await rclone(s3, ["lsf", "--files-only", `r2:${CACHE}/cache/manifests`])).stdout.split("\n").filter(Boolean).sort();
  return names.length ? (await rclone(s3, ["cat", `r2:${CACHE}/cache/manifests/${names[names.length - 1]}`])).stdout : "";
}

const nightlyArgs = (sfs: string, extra: string[] = []) => ["--r2-endpoint", s3.endpoint, "--sfs", sfs, "--only", "cache", ...extra];

describe("the nightly backup and the hourly job share one lock", () => {
  it("the nightly waits for a running hourly job, then backs up its finished snapshot and no half-written one", async () => {
    const { host, sfs, set } = await hostWithSnapshot();
    // Left behind by an hourly run killed mid-write (SIGKILL: its exit hook never ran).
    write(join(set, "2026-01-01T000000Z.partial/project.tar.gz"), "half-written");
    const hourly = await startSlowHourly(host, sfs, set, 3);
    const nightly = await run("backup-to-r2.sh", nightlyArgs(sfs), { env: { COMFYUME_ROOT: host, RCLONE_RETRIES: "1" }, input: r2Secrets(s3) });
    const h = await hourly.done;
    expect(h.code, h.stderr).toBe(0);
    expect(nightly.code, nightly.stderr).toBe(0);
    expect(nightly.stderr).toMatch(/waiting up to \d+s for the lock \S+comfyume-backup-instance\.lock, held by the hourly job \(backup-instance\.sh, pid \d+, since /);
    const manifest = await latestManifest();
    expect(manifest).not.toContain(".partial");
    // The snapshot the hourly job finished while the nightly waited is in the backup.
    const latest = readFileSync(join(set, "latest"), "utf8").trim();
    expect(manifest).toContain(`\tbackups/verda-worker/${latest}/project.tar.gz\t`);
    expect(manifest).toContain(`\tbackups/verda-worker/latest\t`);
  });

  it("fails naming the hourly job (pid, since) when it holds the lock past the wait; writes nothing; the re-run converges", async () => {
    const { host, sfs, set } = await hostWithSnapshot();
    const before = await latestManifest();
    const hourly = await startSlowHourly(host, sfs, set, 6);
    const env = { COMFYUME_ROOT: host, RCLONE_RETRIES: "1" };
    const nightly = await run("backup-to-r2.sh", nightlyArgs(sfs, ["--hourly-wait", "1"]), { env, input: r2Secrets(s3) });
    expect(nightly.code).toBe(1);
    // The last line of stderr (what a failed Pulumi hook shows) names the cause and the fix.
    expect(nightly.stderr.trimEnd().split("\n").pop()).toMatch(/FAILED: lock held by the hourly job \(backup-instance\.sh, pid \d+, since \d{4}-\d\d-\d\dT[\d:]+Z\): waited 1s for \S+\. Let it finish and re-run/);
    expect(await latestManifest()).toBe(before);
    expect((await hourly.done).code).toBe(0);
    const again = await run("backup-to-r2.sh", nightlyArgs(sfs), { env, input: r2Secrets(s3) });
    expect(again.code, again.stderr).toBe(0);
    expect(await latestManifest()).toContain(`/${readFileSync(join(set, "latest"), "utf8").trim()}/project.tar.gz\t`);
  });

  it("the hourly job does not run while the nightly backup holds the lock, and says so", async () => {
    const { host, sfs } = await hostWithSnapshot();
    // A slow upload keeps the nightly inside its locked section.
    const slow = join(tmp("slowrclone"), "rclone");
    write(slow, `#!/usr/bin/env bash\n[[ " $* " == *" copy "* ]] && sleep 4\nexec rclone "$@"\n`, 0o755);
    write(join(sfs, "cache/extra/new.bin"), Buffer.alloc(10_000, 5));
    const nightly = run("backup-to-r2.sh", nightlyArgs(sfs), { env: { COMFYUME_ROOT: host, RCLONE_RETRIES: "1", RCLONE_CMD: slow }, input: r2Secrets(s3) });
    const owner = join(host, "run/lock/comfyume-backup-instance.lock.owner");
    for (let i = 0; i < 200 && !(existsSync(owner) && readFileSync(owner, "utf8").includes("backup-to-r2")); i++) await new Promise((r) => setTimeout(r, 50));
    const hourly = await run("backup-instance.sh", ["--sfs", sfs, "--min-free-mb", "1"], { env: { COMFYUME_ROOT: host } });
    expect(hourly.code).toBe(1);
    expect(hourly.stderr).toMatch(/another run holds the lock \S+comfyume-backup-instance\.lock \(backup-to-r2\.sh, pid \d+, since /);
    expect((await nightly).code).toBe(0);
  });
});
