// Benchmark: the backup engine at workshop shape (issue 13). Not a test: it prints a table.
//   npm run bench:scale -- [--gb 3] [--scripts DIR] [--legacy-hook] [--keep] [--nights 1|2|3]
//     [--restore-rounds N] [--restore-via-proxy]
//     [--engine project|restic|rclone-checksum --s3-server PATH] [--json]   (engines/runner.ts)
// Generates incompressible data shaped like the workshop (SFS: a few large models, config
// tarballs, a worker image tarball; scratch: many files of 1 KB-2 MB and a few large ones), then
// runs the real host scripts against a real S3 endpoint on loopback (versitygw behind a counting
// proxy) for night 1 (full), night 2 (nothing changed) and night 3 (~1 % changed or added), each on
// a "new instance" (a fresh COMFYUME_ROOT, the data evicted from the page cache), and a morning
// restore against a raw `cp -a` of the same files. --scripts runs another copy of scripts/ (e.g.
// main's, exported with `git archive`); --legacy-hook passes the scratch backup the arguments the
// hook had before issue 13 (no --state-dir on the scratch).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { startS3Server } from "../../sim/local-cloud/s3-server";
import type { EngineName } from "./engines/drivers";
import { startGoS3 } from "./engines/endpoint";
import { CALIBRATION_BUCKETS, runEngineBench } from "./engines/runner";

const REPO = resolve(__dirname, "../..");
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string, dflt: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const GB = Number(option("--gb", "3"));
const SCRIPTS = resolve(option("--scripts", join(REPO, "scripts")));
const LEGACY_HOOK = flag("--legacy-hook");
// --nights 1: only night 1 (the full backup the morning restore needs), for restore work.
const NIGHTS = Number(option("--nights", "3"));
// With --json, stdout holds the one JSON document; progress lines go to stderr.
const say = flag("--json") ? console.error : console.log;
// --engine: the comparison of docs/backups.md ("Choosing the engine"), run by engines/runner.ts
// against a Go S3 server (--s3-server PATH or COMFYUME_S3_SERVER); restic cannot use s3rver.
const ENGINE = option("--engine", "project") as EngineName;
const S3_SERVER = option("--s3-server", process.env.COMFYUME_S3_SERVER ?? "");
// Real sizes (issue 13): models 192 GB, cache 6.5 GB + worker image ~20 GB, scratch 50 GB.
const REAL = { sfs: 192 + 27, scratch: 50 };
const SHARE = { models: 192 / 269, cache: 6.5 / 269, worker: 20.5 / 269, scratch: 50 / 269 };

const work = mkdtempSync(join(tmpdir(), "comfyume-bench-scale-"));
const SFS = join(work, "sfs");
const SCRATCH = join(work, "scratch");
const BUCKETS = ["comfyume-model-vault-backups", "comfyume-cache-backups", "comfyume-worker-container-backups", "comfyume-user-files-backups"];

function writeRandom(path: string, bytes: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "w");
  for (let left = bytes; left > 0; left -= 1 << 20) writeSync(fd, randomBytes(Math.min(left, 1 << 20)));
  closeSync(fd);
}

/** Log-uniform sizes between lo and hi, deterministic enough for a shape. */
function logUniform(lo: number, hi: number): number {
  return Math.round(Math.exp(Math.log(lo) + Math.random() * (Math.log(hi) - Math.log(lo))));
}

function generate(): { sfsBytes: number; scratchBytes: number; files: number } {
  const total = GB * 1e9;
  let sfsBytes = 0;
  let scratchBytes = 0;
  let files = 0;
  const put = (path: string, size: number, where: "sfs" | "scratch") => {
    writeRandom(path, size);
    files++;
    if (where === "sfs") sfsBytes += size;
    else scratchBytes += size;
  };
  // Models: six files, a few large ones and small ones (the real set: a few dozen of 1-25 GB).
  const models = [0.3, 0.25, 0.2, 0.15, 0.07, 0.03];
  models.forEach((f, i) => put(join(SFS, `models/m${i}/model-${i}.safetensors`), Math.round(total * SHARE.models * f), "sfs"));
  // Cache: config/project tarballs of two hourly snapshots.
  for (const stamp of ["2026-01-01T100000Z", "2026-01-01T110000Z"]) {
    for (const [name, f] of [["project", 0.3], ["config", 0.02], ["tailscale", 0.01], ["ssh-host-keys", 0.01], ["extras", 0.16]] as const)
      put(join(SFS, `cache/backups/verda-worker/${stamp}/${name}.tar.gz`), Math.max(1024, Math.round(total * SHARE.cache * f)), "sfs");
  }
  writeFileSync(join(SFS, "cache/backups/verda-worker/latest"), "2026-01-01T110000Z\n");
  put(join(SFS, "worker-image.tar.gz"), Math.round(total * SHARE.worker), "sfs");
  // Scratch: many small images and a few large videos (thousands of files at the default size).
  const scratchTarget = total * SHARE.scratch;
  const large = 4;
  for (let i = 0; i < large; i++) put(join(SCRATCH, `outputs/user${i}/video-${i}.mp4`), Math.round((scratchTarget * 0.5) / large), "scratch");
  let n = 0;
  while (scratchBytes < scratchTarget) {
    const dir = n % 4 === 0 ? "inputs" : "outputs";
    put(join(SCRATCH, `${dir}/user${n % 20}/img-${n}.png`), Math.min(logUniform(1024, 2 << 20), Math.max(1024, scratchTarget - scratchBytes)), "scratch");
    n++;
  }
  return { sfsBytes, scratchBytes, files };
}

/** Night 3: about 1 % of the bytes changed or added, in both places. */
function changeOnePercent(): number {
  const total = GB * 1e9;
  let changed = 0;
  const snap = join(SFS, "cache/backups/verda-worker/2026-01-02T100000Z");
  writeRandom(join(snap, "project.tar.gz"), Math.round(total * 0.005));
  writeRandom(join(snap, "config.tar.gz"), 4096);
  changed += Math.round(total * 0.005) + 4096;
  for (let i = 0; i < 20; i++) {
    const size = Math.round((total * 0.004) / 20);
    writeRandom(join(SCRATCH, `outputs/user${i}/new-${i}.png`), size);
    changed += size;
  }
  const inputs = readdirSync(join(SCRATCH, "inputs/user0"));
  for (const name of inputs.slice(0, 3)) {
    const p = join(SCRATCH, "inputs/user0", name);
    const size = statSync(p).size;
    writeRandom(p, size); // rewritten in place: same size, new mtime
    changed += size;
  }
  return changed;
}

// ---- S3 endpoint with a counting proxy ----
interface Counters { requests: number; byMethod: Record<string, number>; bytesIn: number; bytesOut: number }
const counters: Counters = { requests: 0, byMethod: {}, bytesIn: 0, bytesOut: 0 };
const snapshot = (): Counters => JSON.parse(JSON.stringify(counters));

async function startEndpoint(): Promise<{ url: string; secret: string; dataDir: string; stop: () => void }> {
  const secret = "bench-" + Math.random().toString(36).slice(2);
  const server = await startS3Server({ dir: join(work, "s3"), buckets: BUCKETS, accessKeyId: "BENCHKEY", secretAccessKey: secret });
  const { port } = new URL(server.endpoint);
  // Headers (Host included) pass unchanged, so request signatures still verify.
  const proxy = createServer((req, res) => {
    counters.requests++;
    counters.byMethod[req.method!] = (counters.byMethod[req.method!] ?? 0) + 1;
    const up = request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.on("data", (d: Buffer) => (counters.bytesOut += d.length));
      r.pipe(res);
    });
    req.on("data", (d: Buffer) => (counters.bytesIn += d.length));
    req.pipe(up);
    up.on("error", () => res.destroy());
  });
  const proxyPort = await new Promise<number>((res) => proxy.listen(0, "127.0.0.1", () => res((proxy.address() as { port: number }).port)));
  return { url: `http://127.0.0.1:${proxyPort}`, secret, dataDir: server.dataDir, stop: () => (proxy.close(), void server.close()) };
}

/** Drops DIR's files from the page cache (as on a new instance): sync, then dd iflag=nocache (no root needed). */
function evict(dir: string): void {
  spawnSync("sync"); // dirty pages cannot be dropped
  spawnSync("bash", ["-c", `find "$1" -type f -exec dd iflag=nocache count=0 status=none if={} \\;`, "_", dir]);
}

interface Measured { seconds: number; readBytes: number; rchar: number; sent: number; requests: number; verifyBytes: number; cpuSeconds: number; hashed: string; stderr: string }

/** CPU seconds (user + system) of a process and its reaped descendants, from its /proc/PID/stat line. */
export function treeCpuSeconds(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // after "pid (comm) ": f[0] is field 3
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** Runs bash SCRIPT ARGS on a fresh "instance" root; read_bytes/rchar of its whole process tree. */
async function measure(script: string, args: string[], input: string, opts: { sync?: boolean } = {}): Promise<Measured> {
  const root = mkdtempSync(join(work, "host-"));
  const ioFile = join(root, "io");
  const before = snapshot();
  const t0 = process.hrtime.bigint();
  // The outer bash reaps the script, so its /proc/<pid>/io holds the I/O of every descendant.
  const result = await new Promise<{ code: number; stderr: string }>((res) => {
    // With sync (the restores), the time includes writing the data out, as the raw copy's does.
    const child = spawn("bash", ["-c", 'bash "$@"; rc=$?; if [[ -n $BENCH_SYNC ]]; then sync; fi; { cat /proc/$$/io; printf "stat: %s\\n" "$(cat /proc/$$/stat)"; } >"$BENCH_IO"; exit $rc', "_", script, ...args], {
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/root", LANG: "C.UTF-8", COMFYUME_ROOT: root, BENCH_IO: ioFile, RCLONE_RETRIES: "2", BENCH_SYNC: opts.sync ? "1" : "", ...extraEnv() },
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => res({ code: code ?? -1, stderr }));
    child.stdin.end(input);
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (result.code !== 0) throw new Error(`${script} failed (${result.code}):\n${result.stderr.split("\n").slice(-15).join("\n")}`);
  const ioText = readFileSync(ioFile, "utf8").trim().split("\n");
  const io = Object.fromEntries(ioText.filter((l) => !l.startsWith("stat: ")).map((l) => l.split(": ")).map(([k, v]) => [k, Number(v)]));
  const cpuSeconds = treeCpuSeconds(ioText.find((l) => l.startsWith("stat: "))!.slice(6));
  const after = snapshot();
  const hashed = [...result.stderr.matchAll(/hashed (\d+) file\(s\), (\d+) bytes; reused (\d+)/g)].reduce((a, m) => [a[0] + +m[1], a[1] + +m[2], a[2] + +m[3]], [0, 0, 0]);
  return {
    seconds,
    readBytes: io.read_bytes,
    rchar: io.rchar,
    sent: after.bytesIn - before.bytesIn,
    requests: after.requests - before.requests,
    verifyBytes: after.bytesOut - before.bytesOut,
    cpuSeconds,
    hashed: /hashed \d+ file/.test(result.stderr) ? `${hashed[0]} files, ${mb(hashed[1])} MB; reused ${hashed[2]}` : "(not logged)",
    stderr: result.stderr,
  };
}

const mb = (b: number) => (b / 1e6).toFixed(1);

async function main(): Promise<void> {
  const tg = Date.now();
  const shape = generate();
  say(`bench:scale: ${GB} GB requested; SFS ${mb(shape.sfsBytes)} MB, scratch ${mb(shape.scratchBytes)} MB, ${shape.files} files (generated in ${((Date.now() - tg) / 1000).toFixed(0)} s) under ${work}`);
  say(`scripts: ${SCRIPTS}${LEGACY_HOOK ? " (scratch backup with the pre-issue-13 hook arguments)" : ""}`);
  if (ENGINE !== "project" || S3_SERVER || flag("--json")) {
    await runEngines(shape);
  } else {
    const s3 = await startEndpoint();
    try {
      await runAll(shape, s3);
    } finally {
      s3.stop();
    }
  }
  if (!flag("--keep")) rmSync(work, { recursive: true, force: true });
  // (stderr with --json: stdout holds the one JSON document)
  say(`bench:scale: the run took ${((Date.now() - tg) / 1000).toFixed(0)} s (load ${loadAverage()} at the end)`);
}

async function runAll(shape: { sfsBytes: number; scratchBytes: number }, s3: { url: string; secret: string; dataDir: string }): Promise<void> {
  const secrets = `R2_ACCESS_KEY_ID=BENCHKEY\nR2_SECRET_ACCESS_KEY=${s3.secret}\n`;
  const sfsArgs = ["--r2-endpoint", s3.url, "--sfs", SFS, "--hourly-wait", "5"];
  const scratchArgs = ["--r2-endpoint", s3.url, "--data-dir", SCRATCH, "--dirs", "inputs,outputs", "--prefix", "scratch", ...(LEGACY_HOOK ? [] : ["--state-dir", join(SCRATCH, ".comfyume/backup-state")])];
  const rows: string[][] = [];
  const nights: Record<string, { sfs: Measured; scratch: Measured }> = {};
  const allNights = [["night 1 (full)", () => 0], ["night 2 (nothing changed)", () => 0], ["night 3 (~1 % changed/added)", changeOnePercent]] as const;
  for (const [night, prep] of allNights.slice(0, NIGHTS)) {
    const changed = prep();
    if (changed) console.log(`${night}: ${mb(changed)} MB changed or added`);
    evict(SFS);
    evict(SCRATCH);
    const sfs = await measure(join(SCRIPTS, "host/backup-to-r2.sh"), sfsArgs, secrets);
    const scratch = await measure(join(SCRIPTS, "host/backup-mello.sh"), scratchArgs, secrets);
    nights[night] = { sfs, scratch };
    for (const [part, m, bytes] of [["SFS", sfs, shape.sfsBytes], ["scratch", scratch, shape.scratchBytes]] as const)
      rows.push([night, part, m.seconds.toFixed(1), `${mb(m.readBytes)} (${((100 * m.readBytes) / bytes).toFixed(1)} %)`, mb(m.rchar), `${mb(m.sent)} (${((100 * m.sent) / bytes).toFixed(2)} %)`, String(m.requests), mb(m.verifyBytes), m.hashed]);
  }
  // Morning restore (seed-sfs for the SFS sets, the engine's r2_restore_tree for the scratch sets)
  // against a raw copy of the same files, both from a cold page cache onto the same disk; and a bare
  // `rclone copy --fast-list` of the buckets' objects from
  // the same endpoint (no checks, no installing; older nights' objects too): the
  // transport's own ceiling here (versitygw and the counting proxy, a Node process, share these cores).
  const restoreRoot = join(work, "restore");
  const driver = join(work, "restore-scratch.sh");
  const lib = JSON.stringify(join(SCRIPTS, "lib/common.sh"));
  writeFileSync(driver, `set -euo pipefail\nsource ${lib}\nread_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY\nR2_ENDPOINT=$1\nr2_setup\nfor d in inputs outputs; do\n  mkey=$(r2_latest_manifest comfyume-user-files-backups scratch/$d)\n  r2_restore_tree comfyume-user-files-backups "$mkey" "$2/$d"\ndone\n`);
  const bare = join(work, "bare-download.sh");
  writeFileSync(bare, `set -euo pipefail\nsource ${lib}\nread_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY\nR2_ENDPOINT=$1\nr2_setup\nfor b in ${BUCKETS.join(" ")}; do\n  r2_rclone copy --fast-list --transfers 16 --checkers 16 --ignore-checksum --exclude '*/manifests/**' "r2:$b" "$2/$b"\ndone\n`);
  mkdirSync(join(restoreRoot, "sfs"), { recursive: true });
  evict(s3.dataDir);
  const loadBefore = loadAverage();
  const seed = await measure(join(SCRIPTS, "host/seed-sfs.sh"), ["--r2-endpoint", s3.url, "--sfs", join(restoreRoot, "sfs"), "--min-free-mb", "10"], secrets, { sync: true });
  evict(s3.dataDir);
  const scratchRestore = await measure(driver, [s3.url, join(restoreRoot, "scratch")], secrets, { sync: true });
  evict(s3.dataDir);
  const download = await measure(bare, [s3.url, join(work, "bare")], secrets, { sync: true });
  const downloadedBytes = treeBytes(join(work, "bare"));
  evict(SFS);
  evict(SCRATCH);
  const tc = process.hrtime.bigint();
  spawnSync("cp", ["-a", SFS, join(work, "cp-sfs")]);
  spawnSync("cp", ["-a", SCRATCH, join(work, "cp-scratch")]);
  spawnSync("sync");
  const cpSeconds = Number(process.hrtime.bigint() - tc) / 1e9;
  const restoreSeconds = seed.seconds + scratchRestore.seconds;
  writeFileSync(join(work, "restore-sfs.log"), seed.stderr);
  writeFileSync(join(work, "restore-scratch.log"), scratchRestore.stderr);
  const loadAfter = loadAverage();
  console.log("");
  console.log("| night | part | wall s | read from disk MB (% of data) | read calls MB (rchar) | sent MB (% of data) | S3 requests | read back / downloaded MB | hashed |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log("");
  const restoredBytes = treeBytes(SFS) + treeBytes(SCRATCH);
  const rate = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
  console.log(`| morning restore | wall s | MB/s | raw cp -a (same files, same disk) s | MB/s | ratio |`);
  console.log(`|---|---|---|---|---|---|`);
  console.log(`| SFS sets (seed-sfs) + scratch (r2_restore_tree), ${mb(restoredBytes)} MB | ${restoreSeconds.toFixed(1)} | ${rate(restoredBytes, restoreSeconds)} | ${cpSeconds.toFixed(1)} | ${rate(restoredBytes, cpSeconds)} | ${(cpSeconds / restoreSeconds).toFixed(2)} |`);
  console.log("");
  console.log(`| restore part | wall s | MB/s | read from disk MB | read calls MB (rchar) | S3 requests |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [part, m, bytes] of [["seed-sfs (SFS sets)", seed, treeBytes(SFS)], ["r2_restore_tree (scratch)", scratchRestore, treeBytes(SCRATCH)], ["bare rclone copy of the same objects (no hashing, same rclone flags as the restore)", download, downloadedBytes]] as const)
    console.log(`| ${part}, ${mb(bytes)} MB | ${m.seconds.toFixed(1)} | ${rate(bytes, m.seconds)} | ${mb(m.readBytes)} | ${mb(m.rchar)} | ${m.requests} |`);
  console.log(`(load average, 1/5/15 min: ${loadBefore} before the restore, ${loadAfter} after the raw copy. Both sides start from a cold page cache for what they read (the S3 server's object files for the restore, the source trees for cp: evicted with dd iflag=nocache after a sync), write to new directories on the same filesystem, and are timed up to a sync of what they wrote.)`);
  console.log(`(restore vs bare download: ${(download.seconds / restoreSeconds).toFixed(2)}; bare download vs raw cp: ${(cpSeconds / download.seconds).toFixed(2)})`);
  console.log("");
  console.log(`Linear projection to the real sizes (SFS ${REAL.sfs} GB, scratch ${REAL.scratch} GB): hours of GPU billing for the nightly backup-before-delete`);
  console.log("| night | SFS h | scratch h | total h |");
  console.log("|---|---|---|---|");
  for (const [night, m] of Object.entries(nights)) {
    const sfsH = (m.sfs.seconds * (REAL.sfs * 1e9)) / shape.sfsBytes / 3600;
    const scratchH = (m.scratch.seconds * (REAL.scratch * 1e9)) / shape.scratchBytes / 3600;
    console.log(`| ${night} | ${sfsH.toFixed(2)} | ${scratchH.toFixed(2)} | ${(sfsH + scratchH).toFixed(2)} |`);
  }
  console.log("(linear in bytes: per-file and per-request costs scale with file counts instead; read from disk = read_bytes of the script's whole process tree, i.e. bytes fetched from the block device, with the data set evicted from the page cache before each night; rchar counts every read call, pipes included)");
}

async function runEngines(shape: { sfsBytes: number; scratchBytes: number }): Promise<void> {
  if (!["project", "restic", "rclone-checksum"].includes(ENGINE)) throw new Error(`--engine ${ENGINE}: use project, restic or rclone-checksum`);
  if (!S3_SERVER) throw new Error(`--engine ${ENGINE} needs a Go S3 server (restic cannot use s3rver): pass --s3-server PATH-TO-versitygw, or run npm run setup once it provides COMFYUME_S3_SERVER`);
  const s3 = await startGoS3(S3_SERVER, work, [...BUCKETS, ...CALIBRATION_BUCKETS], counters);
  try {
    await runEngineBench(
      { engine: ENGINE, treeCpuSeconds, work, scripts: SCRIPTS, sfs: SFS, scratch: SCRATCH, real: REAL, shape, changeOnePercent, evict, measure, treeBytes, json: flag("--json"), nights: NIGHTS, restoreRounds: Number(option("--restore-rounds", "1")), restoreViaProxy: flag("--restore-via-proxy"), load: loadAverage },
      s3,
    );
  } finally {
    s3.stop();
  }
}

/** The 1, 5 and 15 minute load averages, as uptime shows them (the machine is shared: figures say the load). */
function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

/** COMFYUME_* settings passed through to the scripts (e.g. COMFYUME_R2_TRANSFERS to try a setting). */
function extraEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith("COMFYUME_R2_") && v !== undefined)) as Record<string, string>;
}

/** Bytes of every regular file under DIR, the engine's own state (.comfyume) left out. */
function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    if (name === ".comfyume") continue;
    const p = join(dir, name);
    const st = statSync(p);
    total += st.isDirectory() ? treeBytes(p) : st.isFile() ? st.size : 0;
  }
  return total;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
