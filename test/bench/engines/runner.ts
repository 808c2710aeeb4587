// The engine comparison of `npm run bench:scale -- --engine project|restic|rclone-checksum`:
// the same data set and nights as the default bench (scale.ts hands over its generator, its
// measuring and its page-cache eviction), every engine against the same Go S3 server.
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { EngineName, rcloneChecksumBackup, rcloneChecksumRestore, resticBackup, resticRestore } from "./drivers";
import type { Endpoint } from "./endpoint";
import { REAL_FILES, REAL_LARGEST, hashedBytes, projectPart, type PartRun } from "./projection";

export interface Measured { seconds: number; readBytes: number; rchar: number; sent: number; requests: number; verifyBytes: number; cpuSeconds: number; hashed: string; stderr: string }

/** What scale.ts hands over (its data set, nights and measuring). */
export interface BenchContext {
  engine: EngineName;
  /** CPU seconds of a process and its reaped descendants, from a /proc/PID/stat line. */
  treeCpuSeconds: (stat: string) => number;
  work: string;
  scripts: string;
  sfs: string;
  scratch: string;
  real: { sfs: number; scratch: number };
  shape: { sfsBytes: number; scratchBytes: number };
  changeOnePercent: () => number;
  evict: (dir: string) => void;
  measure: (script: string, args: string[], input: string, opts?: { sync?: boolean }) => Promise<Measured>;
  treeBytes: (dir: string) => number;
  /** --json: one JSON document on stdout instead of the tables. */
  json?: boolean;
  /** --nights N: run only the first N nights (1: the full backup the restore needs). */
  nights?: number;
  /** --restore-rounds N: restore and raw copy alternated N times (the machine is shared: the median ratio). */
  restoreRounds?: number;
  /** --restore-via-proxy: the restore through the counting proxy (a Node process on the same cores) too. */
  restoreViaProxy?: boolean;
  /** The 1/5/15 minute load averages now. */
  load: () => string;
}

const BUCKETS = ["comfyume-model-vault-backups", "comfyume-cache-backups", "comfyume-worker-container-backups", "comfyume-user-files-backups"];
/** Buckets of the calibration run (fixed cost per run): kept apart from the bench's sets. */
export const CALIBRATION_BUCKETS = ["calib-models", "calib-cache", "calib-worker", "calib-users"];
const NIGHTS = ["night 1 (full)", "night 2 (nothing changed)", "night 3 (~1 % changed/added)"] as const;
const mb = (b: number) => (b / 1e6).toFixed(1);

interface Part { name: "SFS" | "scratch"; data: string; bytes: number }

/** Bash scripts (written under work) for one part's backup and restore with ENGINE. */
function scriptsFor(ctx: BenchContext, s3: Endpoint): { backup: (p: Part) => [string, string[]]; restore: (p: Part, dest: string) => [string, string[]] } {
  const lib = join(ctx.scripts, "lib/common.sh");
  const write = (name: string, text: string) => (writeFileSync(join(ctx.work, name), text), join(ctx.work, name));
  const bucket = (p: Part) => (p.name === "SFS" ? "comfyume-model-vault-backups" : "comfyume-user-files-backups");
  const restoreUrl = ctx.restoreViaProxy ? s3.url : s3.directUrl;
  const args = (p: Part, dest = "") => [dest ? restoreUrl : s3.url, p.data, bucket(p), p.name.toLowerCase(), ...(dest ? [dest] : [])];
  if (ctx.engine === "restic") {
    const b = write("restic-backup.sh", resticBackup(lib));
    const r = write("restic-restore.sh", resticRestore(lib));
    return { backup: (p) => [b, args(p)], restore: (p, dest) => [r, args(p, dest)] };
  }
  if (ctx.engine === "rclone-checksum") {
    const b = write("rclone-checksum-backup.sh", rcloneChecksumBackup(lib));
    const r = write("rclone-checksum-restore.sh", rcloneChecksumRestore(lib));
    return { backup: (p) => [b, args(p)], restore: (p, dest) => [r, args(p, dest)] };
  }
  // The project's engine: the real host scripts, as in the default bench.
  // The scratch's two sets restored side by side, as seed-sfs does with the SFS sets (scripts older
  // than r2_restore_step_bg: one after the other).
  const scratchRestore = write(
    "project-restore-scratch.sh",
    `set -euo pipefail\nsource ${JSON.stringify(lib)}\nread_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY\nR2_ENDPOINT=$1\nr2_setup\n` +
      `restore_dir() {\n  local mkey\n  mkey=$(r2_latest_manifest comfyume-user-files-backups "scratch/$1")\n  r2_restore_tree comfyume-user-files-backups "$mkey" "$2/$1"\n}\n` +
      `if declare -F r2_restore_step_bg >/dev/null; then\n  for d in inputs outputs; do r2_restore_step_bg "$d" restore_dir "$d" "$2"; done\n  r2_restore_steps_wait\nelse\n  for d in inputs outputs; do restore_dir "$d" "$2"; done\nfi\n`,
  );
  return {
    backup: (p) =>
      p.name === "SFS"
        ? [join(ctx.scripts, "host/backup-to-r2.sh"), ["--r2-endpoint", s3.url, "--sfs", p.data, "--hourly-wait", "5"]]
        : [join(ctx.scripts, "host/backup-mello.sh"), ["--r2-endpoint", s3.url, "--data-dir", p.data, "--dirs", "inputs,outputs", "--prefix", "scratch", "--state-dir", join(p.data, ".comfyume/backup-state")]],
    restore: (p, dest) =>
      p.name === "SFS"
        ? [join(ctx.scripts, "host/seed-sfs.sh"), ["--r2-endpoint", restoreUrl, "--sfs", dest, "--min-free-mb", "10"]]
        : [scratchRestore, [restoreUrl, dest]],
  };
}

/** Files under DIR, the engine's own state (.comfyume) left out. */
function countFiles(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    if (name === ".comfyume") continue;
    const st = statSync(join(dir, name));
    n += st.isDirectory() ? countFiles(join(dir, name)) : st.isFile() ? 1 : 0;
  }
  return n;
}

/**
 * Fixed cost per run of the project's engine, per part: the same scripts on one tiny file per set
 * (calibration buckets), run twice on fresh instances; the second run (nothing changed) is measured.
 */
async function calibrateProject(ctx: BenchContext, s3: Endpoint, secrets: string): Promise<Record<Part["name"], number>> {
  const sfs = join(ctx.work, "calib-sfs");
  const scratch = join(ctx.work, "calib-scratch");
  for (const rel of ["models/m0/model.safetensors", "cache/backups/verda-worker/2026-01-01T100000Z/config.tar.gz", "worker-image.tar.gz"]) {
    mkdirSync(join(sfs, rel, ".."), { recursive: true });
    writeFileSync(join(sfs, rel), `calibration ${rel}\n`);
  }
  for (const rel of ["inputs/user0/a.png", "outputs/user0/b.png"]) {
    mkdirSync(join(scratch, rel, ".."), { recursive: true });
    writeFileSync(join(scratch, rel), `calibration ${rel}\n`);
  }
  const sfsRun: [string, string[]] = [join(ctx.scripts, "host/backup-to-r2.sh"), ["--r2-endpoint", s3.url, "--sfs", sfs, "--hourly-wait", "5", "--models-bucket", "calib-models", "--cache-bucket", "calib-cache", "--worker-bucket", "calib-worker"]];
  const scratchRun: [string, string[]] = [join(ctx.scripts, "host/backup-mello.sh"), ["--r2-endpoint", s3.url, "--data-dir", scratch, "--dirs", "inputs,outputs", "--prefix", "scratch", "--bucket", "calib-users", "--state-dir", join(scratch, ".comfyume/backup-state")]];
  const out = {} as Record<Part["name"], number>;
  for (const [name, [script, args]] of [["SFS", sfsRun], ["scratch", scratchRun]] as const) {
    await ctx.measure(script, args, secrets);
    await new Promise((r) => setTimeout(r, 1100)); // dated manifests are per second
    out[name] = (await ctx.measure(script, args, secrets)).seconds;
  }
  return out;
}

export async function runEngineBench(ctx: BenchContext, s3: Endpoint): Promise<void> {
  const secrets = `R2_ACCESS_KEY_ID=${s3.accessKeyId}\nR2_SECRET_ACCESS_KEY=${s3.secret}\n`;
  const parts: Part[] = [
    { name: "SFS", data: ctx.sfs, bytes: ctx.shape.sfsBytes },
    { name: "scratch", data: ctx.scratch, bytes: ctx.shape.scratchBytes },
  ];
  const run = scriptsFor(ctx, s3);
  const rows: string[] = [];
  const hours: string[] = [];
  // The project's engine: fixed cost per run measured apart, for a projection that does not scale it.
  const fixed = ctx.engine === "project" ? await calibrateProject(ctx, s3, secrets) : undefined;
  const samplePercent = Number(process.env.R2_SAMPLE_PERCENT ?? 2);
  const partRun = (name: "sfs" | "scratch", data: string): PartRun => ({
    fixed: fixed?.[name === "sfs" ? "SFS" : "scratch"] ?? 0,
    benchFiles: countFiles(data),
    realFiles: REAL_FILES[name],
    realBytes: ctx.real[name] * 1e9,
    realLargest: REAL_LARGEST[name],
    samplePercent,
    nights: [],
  });
  const partRuns: Record<Part["name"], PartRun> = { SFS: partRun("sfs", ctx.sfs), scratch: partRun("scratch", ctx.scratch) };

  const result: { engine: string; nights: Record<string, Record<string, Omit<Measured, "stderr" | "hashed">>>; restore?: Record<string, number>; gpuHours: Record<string, number> } = { engine: ctx.engine, nights: {}, gpuHours: {} };
  for (const night of NIGHTS.slice(0, ctx.nights ?? NIGHTS.length)) {
    const changed = night.startsWith("night 3") ? ctx.changeOnePercent() : 0;
    if (changed) (ctx.json ? console.error : console.log)(`${night}: ${mb(changed)} MB changed or added`);
    let total = 0;
    const perPart: number[] = [];
    for (const p of parts) {
      ctx.evict(ctx.sfs);
      ctx.evict(ctx.scratch);
      const [script, args] = run.backup(p);
      const m = await ctx.measure(script, args, secrets);
      const h = (m.seconds * (p.name === "SFS" ? ctx.real.sfs : ctx.real.scratch) * 1e9) / p.bytes / 3600;
      perPart.push(h);
      total += h;
      partRuns[p.name].nights.push({ seconds: m.seconds, hashedBytes: hashedBytes(m.stderr), readBackBytes: m.verifyBytes });
      const { stderr: _e, hashed: _h, ...figures } = m;
      (result.nights[night] ??= {})[p.name] = figures;
      rows.push(`| ${night} | ${p.name} | ${m.seconds.toFixed(1)} | ${mb(m.readBytes)} (${((100 * m.readBytes) / p.bytes).toFixed(1)} %) | ${mb(m.sent)} (${((100 * m.sent) / p.bytes).toFixed(2)} %) | ${m.requests} | ${mb(m.verifyBytes)} |`);
    }
    hours.push(`| ${night} | ${perPart[0].toFixed(2)} | ${perPart[1].toFixed(2)} | ${total.toFixed(2)} |`);
    result.gpuHours[night] = total;
  }
  // Morning restore onto a fresh disk against a raw copy of the same files (restoreAndCopy).
  const r = await restoreAndCopy(ctx, s3, run, parts, secrets);
  const { bytes, restoreSeconds, cpSeconds, download, downloaded, restoreRows } = r;
  if (ctx.json) {
    result.restore = { bytes, restoreSeconds, cpSeconds, ratio: r.ratio, bareBytes: downloaded, bareSeconds: download.seconds };
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`\n### engine: ${ctx.engine} (S3: Go server on loopback behind a counting proxy)\n`);
  console.log("| night | part | wall s | read from disk MB (% of data) | sent MB (% of data) | S3 requests | read back MB |");
  console.log("|---|---|---|---|---|---|---|");
  rows.forEach((r) => console.log(r));
  console.log("\n| restore part | wall s | MB/s | S3 requests | downloaded MB |\n|---|---|---|---|---|");
  restoreRows.forEach((r) => console.log(r));
  console.log(`\n| round | restore s | restore MB/s | raw cp -a s | cp MB/s | restore / cp | CPU s: restore / S3 server / cp | load before / after |\n|---|---|---|---|---|---|---|---|`);
  r.rounds.forEach((x, i) => console.log(`| ${i + 1} | ${x.restore.toFixed(1)} | ${(bytes / 1e6 / x.restore).toFixed(1)} | ${x.cp.toFixed(1)} | ${(bytes / 1e6 / x.cp).toFixed(1)} | ${(x.cp / x.restore).toFixed(2)} | ${x.restoreCpu.toFixed(1)} / ${x.serverCpu.toFixed(1)} / ${x.cpCpu.toFixed(1)} | ${x.load} |`));
  console.log(`\nmorning restore ${mb(bytes)} MB (median round): ${restoreSeconds.toFixed(1)} s, ${(bytes / 1e6 / restoreSeconds).toFixed(1)} MB/s; raw cp -a ${cpSeconds.toFixed(1)} s, ${(bytes / 1e6 / cpSeconds).toFixed(1)} MB/s; ratio ${r.ratio.toFixed(2)}`);
  console.log(`(restore ${ctx.restoreViaProxy ? "through the counting proxy" : "straight to the S3 server (the counting proxy, a Node process on the same cores, is left out: R2 has none)"}; both sides start from a cold page cache for what they read (the S3 server's files; the source trees), write new files on the same filesystem, and are timed up to a sync of what they wrote; the rounds alternate restore and copy)`);
  const restoreRate = bytes / 1e6 / restoreSeconds;
  const bareRate = downloaded / 1e6 / download.seconds;
  console.log(`bare rclone copy of the stored objects (no hashing): ${mb(downloaded)} MB in ${download.seconds.toFixed(1)} s, ${bareRate.toFixed(1)} MB/s; restore vs bare download ${(restoreRate / bareRate).toFixed(2)}; bare download vs raw cp ${((bareRate * cpSeconds * 1e6) / bytes).toFixed(2)}`);
  console.log(`\nLinear projection to SFS ${ctx.real.sfs} GB + scratch ${ctx.real.scratch} GB: GPU hours per night\n| night | SFS h | scratch h | total h |\n|---|---|---|---|`);
  hours.forEach((h) => console.log(h));
  // (the model needs night 1 for the per-byte cost and night 2 for the per-file cost)
  if (fixed && partRuns.SFS.nights.length >= 2) printProjection(partRuns);
  else if (fixed) console.log("(projection by cost kind: needs nights 1 and 2; run without --nights 1)");
}

/** The projection that keeps fixed, per-file and per-byte costs apart (projection.ts). */
function printProjection(parts: Record<Part["name"], PartRun>): void {
  const proj = { SFS: projectPart(parts.SFS), scratch: projectPart(parts.scratch) };
  console.log(`\nProjection to the real sizes by cost kind (SFS ${REAL_FILES.sfs} files, scratch ${REAL_FILES.scratch} files; night 3: 1 % of each part changed; read-back sample ${parts.SFS.samplePercent} %)`);
  console.log("| part | fixed s per run (calibration) | per file ms (night 2) | per MB hashed or read back, s (night 1) | bench files |\n|---|---|---|---|---|");
  for (const [name, p] of Object.entries(proj))
    console.log(`| ${name} | ${p.fixed.toFixed(1)} | ${(p.perFile * 1000).toFixed(2)} | ${(p.perByte * 1e6).toFixed(4)} | ${parts[name as Part["name"]].benchFiles} |`);
  // The model at the bench's own size against what was measured: a large residual means the
  // bench could not resolve that cost (night 3 changes only ~1 % of a small set: seconds of noise).
  console.log("\n| night | part | measured s | model at bench size s |\n|---|---|---|---|");
  for (const [name, p] of Object.entries(proj)) {
    const run = parts[name as Part["name"]];
    run.nights.forEach((n, i) => console.log(`| ${NIGHTS[i]} | ${name} | ${n.seconds.toFixed(1)} | ${(p.fixed + p.perFile * run.benchFiles + p.perByte * (n.hashedBytes + n.readBackBytes)).toFixed(1)} |`));
  }
  console.log("\n| night | SFS min | scratch min | total min (parts one after another) | GPU h | worst sample night: total min |\n|---|---|---|---|---|---|");
  NIGHTS.forEach((night, i) => {
    const a = proj.SFS.seconds[i]!;
    const b = proj.scratch.seconds[i]!;
    const w = proj.SFS.worst[i]! + proj.scratch.worst[i]!;
    console.log(`| ${night} | ${(a / 60).toFixed(1)} | ${(b / 60).toFixed(1)} | ${((a + b) / 60).toFixed(1)} | ${((a + b) / 3600).toFixed(2)} | ${(w / 60).toFixed(1)} |`);
  });
}

/** Wall and CPU seconds of one round: the restore (its process tree; the S3 server apart) and the raw copy. */
interface RestoreRound { restore: number; cp: number; load: string; restoreCpu: number; serverCpu: number; cpCpu: number }

/** Restore (every part) and a raw `cp -a` of the same files, alternated ctx.restoreRounds times; the median round by ratio. */
async function restoreAndCopy(ctx: BenchContext, s3: Endpoint, run: ReturnType<typeof scriptsFor>, parts: Part[], secrets: string) {
  const restoreRoot = join(ctx.work, `restore-${ctx.engine}`);
  const rounds: RestoreRound[] = [];
  let restoreRows: string[] = [];
  for (let round = 0; round < (ctx.restoreRounds ?? 1); round++) {
    const loadBefore = ctx.load();
    let restore = 0;
    let restoreCpu = 0;
    const server0 = s3.serverCpu();
    restoreRows = [];
    for (const p of parts) {
      const dest = join(restoreRoot, p.name.toLowerCase());
      mkdirSync(dest, { recursive: true });
      ctx.evict(s3.dataDir);
      const [script, args] = run.restore(p, dest);
      const m = await ctx.measure(script, args, secrets, { sync: true });
      restore += m.seconds;
      restoreCpu += m.cpuSeconds;
      restoreRows.push(`| ${p.name}, ${mb(p.bytes)} MB | ${m.seconds.toFixed(1)} | ${(p.bytes / 1e6 / m.seconds).toFixed(1)} | ${ctx.restoreViaProxy ? m.requests : "-"} | ${ctx.restoreViaProxy ? mb(m.verifyBytes) : "-"} |`);
    }
    const serverCpu = s3.serverCpu() - server0;
    rmSync(restoreRoot, { recursive: true, force: true });
    ctx.evict(ctx.sfs);
    ctx.evict(ctx.scratch);
    const tc = process.hrtime.bigint();
    // (one bash: its /proc stat then holds the copies' CPU time)
    const copied = spawnSync("bash", ["-c", 'cp -a "$1" "$2" && cp -a "$3" "$4" && sync && cat /proc/$$/stat', "_", ctx.sfs, join(ctx.work, "cp-sfs"), ctx.scratch, join(ctx.work, "cp-scratch")], { encoding: "utf8" });
    const cp = Number(process.hrtime.bigint() - tc) / 1e9;
    if (copied.status !== 0) throw new Error(`raw copy failed: ${copied.stderr}`);
    const cpCpu = ctx.treeCpuSeconds(copied.stdout.trim());
    rmSync(join(ctx.work, "cp-sfs"), { recursive: true, force: true });
    rmSync(join(ctx.work, "cp-scratch"), { recursive: true, force: true });
    rounds.push({ restore, cp, load: `${loadBefore} / ${ctx.load()}`, restoreCpu, serverCpu, cpCpu });
    (ctx.json ? console.error : console.log)(`restore round ${round + 1}: restore ${restore.toFixed(1)} s, cp ${cp.toFixed(1)} s, ratio ${(cp / restore).toFixed(2)} (load ${rounds[rounds.length - 1].load})`);
  }
  const median = [...rounds].sort((a, b) => a.cp / a.restore - b.cp / b.restore)[Math.floor(rounds.length / 2)];
  // "Raw" download: a bare rclone copy of every object the engine stored (no hashing, no
  // installing; older nights' objects too), the same transfers as the restore: the endpoint's ceiling.
  const bare = join(ctx.work, "bare-download.sh");
  writeFileSync(bare, `set -euo pipefail\nsource ${JSON.stringify(join(ctx.scripts, "lib/common.sh"))}\nread_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY\nR2_ENDPOINT=$1\nr2_setup\nfor b in ${BUCKETS.join(" ")}; do\n  r2_rclone copy --fast-list --transfers 16 --checkers 16 --ignore-checksum --exclude '*/manifests/**' "r2:$b" "$2/$b"\ndone\n`);
  ctx.evict(s3.dataDir);
  const download = await ctx.measure(bare, [ctx.restoreViaProxy ? s3.url : s3.directUrl, join(ctx.work, "bare")], secrets, { sync: true });
  const downloaded = ctx.treeBytes(join(ctx.work, "bare"));
  rmSync(join(ctx.work, "bare"), { recursive: true, force: true });
  const bytes = ctx.treeBytes(ctx.sfs) + ctx.treeBytes(ctx.scratch);
  return { bytes, rounds, ratio: median.cp / median.restore, restoreSeconds: median.restore, cpSeconds: median.cp, download, downloaded, restoreRows };
}
