// Benchmark: the host toolchain bootstrap (scripts/host/bootstrap-host.sh) on machines made from the
// simulated cloud's stock image (no rclone, jq or nfs-common), apt pointed at the package mirror on
// loopback. Prints, per scenario, the bootstrap's own time (its last line), the wall time of the
// machine command (namespace + overlay setup included) and the bytes fetched from the mirror:
//   pre-mount   a fresh host, only nfs-common (what the first-boot script costs before the SFS is mounted)
//   download    the month's first host: apt-get update + install, fills the SFS cache
//   cache       a fresh host with the SFS cache: installs with no download
//   fast path   the same host again: everything present
// Run (root; after npm run setup): scripts/node-env npx tsx test/bench/bootstrap.ts [--runs N]
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startPackageMirror, type PackageMirror } from "../../sim/local-cloud/package-mirror";
import { bootstrapCommand, bootstrapResult, stockMachine } from "../scripts/bootstrap-machine";

const ROOTFS = process.env.COMFYUME_SIM_ROOTFS ?? "";
const MIRROR_DIR = process.env.COMFYUME_SIM_MIRROR ?? "";
const CACHE = "/mnt/sfs/.comfyume/toolchain";

interface Row {
  scenario: string;
  how: string;
  bootstrapSeconds: number;
  wallSeconds: number;
  debsFetched: number;
  bytesFetched: number;
}

function fetchedSince(mirror: PackageMirror, from: number): { debs: number; bytes: number } {
  const paths = mirror.requests().slice(from);
  const bytes = paths.reduce((sum, p) => sum + statSync(path.join(MIRROR_DIR, p.slice(1))).size, 0);
  return { debs: paths.filter((p) => p.endsWith(".deb")).length, bytes };
}

async function measure(mirror: PackageMirror, scenario: string, run: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<Row> {
  const from = mirror.requests().length;
  const started = process.hrtime.bigint();
  const r = await run();
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result = bootstrapResult(r.stdout);
  if (r.code !== 0 || !result) throw new Error(`${scenario}: bootstrap failed (exit ${r.code})\n${r.stderr}`);
  const fetched = fetchedSince(mirror, from);
  return { scenario, how: result.how, bootstrapSeconds: result.seconds, wallSeconds, debsFetched: fetched.debs, bytesFetched: fetched.bytes };
}

async function oneRound(dir: string, mirror: PackageMirror): Promise<Row[]> {
  const sfs = path.join(dir, "sfs");
  const machine = (name: string, withSfs: boolean) => stockMachine(name, { dir: path.join(dir, name), rootfs: ROOTFS, sourcesLine: mirror.sourcesLine, sfs: withSfs ? sfs : undefined });
  const first = machine("first", true);
  const second = machine("second", true);
  const preMount = machine("pre-mount", false);
  return [
    await measure(mirror, "pre-mount (first boot)", () => preMount.run(bootstrapCommand("--pre-mount"))),
    await measure(mirror, "first host (download)", () => first.run(bootstrapCommand("--cache", CACHE))),
    await measure(mirror, "second host (SFS cache)", () => second.run(bootstrapCommand("--cache", CACHE))),
    await measure(mirror, "already installed (fast)", () => second.run(bootstrapCommand("--cache", CACHE))),
  ];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || !ROOTFS || !MIRROR_DIR) throw new Error("run as root after npm run setup (needs COMFYUME_SIM_ROOTFS and COMFYUME_SIM_MIRROR, from scripts/node-env)");
  const runsArg = process.argv.indexOf("--runs");
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 1;
  const mirror = await startPackageMirror({ dir: MIRROR_DIR, host: "127.91.0.4" });
  const rows: Row[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const dir = mkdtempSync(path.join(tmpdir(), "comfyume-bench-bootstrap-"));
      try {
        rows.push(...(await oneRound(dir, mirror)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await mirror.close();
  }
  console.log(`bootstrap-host.sh on the stock image (${runs} run(s); load average ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")})`);
  console.log(`${"scenario".padEnd(28)}${"result".padEnd(22)}${"bootstrap s".padStart(12)}${"wall s".padStart(9)}${"debs".padStart(6)}${"MB fetched".padStart(12)}`);
  for (const r of rows) {
    console.log(`${r.scenario.padEnd(28)}${r.how.padEnd(22)}${r.bootstrapSeconds.toFixed(2).padStart(12)}${r.wallSeconds.toFixed(2).padStart(9)}${String(r.debsFetched).padStart(6)}${(r.bytesFetched / 1e6).toFixed(1).padStart(12)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
