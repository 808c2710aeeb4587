// Progress of long steps (issue 16 item 4): backup-to-r2.sh, with real bash, rclone and the local S3,
// logs "PROGRESS <step>: <phase>: files a/b bytes c/d ..." lines while it hashes and sends, writes
// the JSON progress file that `npm run status` reads, and names a step that stopped moving.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { r2Secrets, REPO, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();

const FILES = 24;
const FILE_BYTES = 512 * 1024;

/** A models set of FILES random files, and a bin dir that slows each md5sum (the hashing pass) down. */
function setUp(): { root: string; bin: string } {
  const root = tmp("progress");
  for (let i = 0; i < FILES; i++) write(join(root, `mnt/sfs/models/m${String(i).padStart(2, "0")}.safetensors`), randomBytes(FILE_BYTES));
  const bin = join(root, "bin");
  // The hashing pass reads each file once through md5sum: 0.15 s more per file makes the pass last
  // several reporting periods on any machine, so intermediate lines must appear.
  write(join(bin, "md5sum"), '#!/usr/bin/env bash\nsleep 0.15\nexec /usr/bin/md5sum "$@"\n', 0o755);
  return { root, bin };
}

interface Line {
  phase: string;
  files: number;
  filesTotal: number;
  bytes: number;
  bytesTotal: number;
  final: boolean;
}

function progressLines(stderr: string): Line[] {
  const re = /PROGRESS (\S+: [a-z]+): files (\d+)\/(\d+) bytes (\d+)\/(\d+) \(\d+%\) .*\/s ETA \d+s.*$/gm;
  return [...stderr.matchAll(re)].map((m) => ({
    phase: m[1],
    files: Number(m[2]),
    filesTotal: Number(m[3]),
    bytes: Number(m[4]),
    bytesTotal: Number(m[5]),
    final: m[0].endsWith("[done]"),
  }));
}

/** A TCP relay to ENDPOINT passing at most RATE bytes per second from the server (all connections together). */
async function slowRelay(endpoint: string, rate: number): Promise<{ endpoint: string; close: () => void }> {
  const target = new URL(endpoint);
  const sockets = new Set<Socket>();
  let budgetAt = Date.now();
  const server = createServer((client) => {
    const up = connect(Number(target.port), target.hostname);
    sockets.add(client).add(up);
    client.pipe(up);
    up.on("data", (d: Buffer) => {
      // Each chunk is released when the shared budget allows it: the link's rate.
      budgetAt = Math.max(budgetAt, Date.now()) + (d.length / rate) * 1000;
      up.pause();
      setTimeout(() => (client.write(d), up.resume()), budgetAt - Date.now());
    });
    client.on("error", () => undefined).on("close", () => up.destroy());
    // (the server's side closes once the chunks still held back have gone out)
    up.on("error", () => undefined).on("close", () => setTimeout(() => client.end(), Math.max(0, budgetAt - Date.now()) + 10));
  });
  const port = await new Promise<number>((res) => server.listen(0, target.hostname, () => res((server.address() as { port: number }).port)));
  return { endpoint: `http://${target.hostname}:${port}`, close: () => (server.close(), [...sockets].forEach((s) => s.destroy())) };
}

describe("progress of long steps", () => {
  it("a report that reads the counts while progress_at rewrites them (an empty file) keeps the last counts, never 0", () => {
    const file = join(tmp("progress-race"), "p.json");
    const script = 'progress_begin hashing 10 1000; progress_at 5 500 f5; _progress_report running 0; : >"$COMFYUME_PROGRESS_BEAT"; _progress_report running 0; progress_end';
    const r = spawnSync("bash", ["-c", `set -euo pipefail; source "$1"; ${script}`, "_", join(REPO, "scripts/lib/common.sh")], {
      encoding: "utf8",
      env: { ...process.env, COMFYUME_PROGRESS_SECONDS: "0", COMFYUME_PROGRESS_FILE: file },
    });
    expect(r.status, r.stderr).toBe(0);
    const counts = [...r.stderr.matchAll(/PROGRESS \S+: hashing: files (\d+)\/10 bytes (\d+)\/1000/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(counts, r.stderr).toEqual(["5 500", "5 500", "5 500"]);
  });

  it("backup-to-r2 logs increasing counts against the data's totals, and the JSON file holds the final state", async () => {
    const { root, bin } = setUp();
    const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", COMFYUME_PROGRESS_SECONDS: "1", PATH: `${bin}:${process.env.PATH}` },
      input: r2Secrets(s3),
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = progressLines(r.stderr);
    console.log(`[sample] progress lines:\n${r.stderr.split("\n").filter((l) => l.includes("PROGRESS")).join("\n")}`);
    for (const phase of ["models: hashing", "models: sending"]) {
      const mine = lines.filter((l) => l.phase === phase);
      expect(mine.length, `${phase} lines in:\n${r.stderr}`).toBeGreaterThan(0);
      for (const l of mine) expect([l.filesTotal, l.bytesTotal]).toEqual([FILES, FILES * FILE_BYTES]);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i].files).toBeGreaterThanOrEqual(mine[i - 1].files);
        expect(mine[i].bytes).toBeGreaterThanOrEqual(mine[i - 1].bytes);
      }
      const last = mine[mine.length - 1];
      expect(last).toMatchObject({ final: true, files: FILES, bytes: FILES * FILE_BYTES });
    }
    // Hashing lasted several periods: lines while it ran, with counts that went up.
    const hashing = lines.filter((l) => l.phase === "models: hashing" && !l.final);
    expect(hashing.length, r.stderr).toBeGreaterThanOrEqual(2);
    expect(hashing[hashing.length - 1].files, r.stderr).toBeGreaterThan(hashing[0].files);
    expect(hashing.every((l) => l.files < FILES)).toBe(true);

    const json = JSON.parse(readFileSync(join(root, "var/lib/comfyume/progress/backup-to-r2.json"), "utf8"));
    expect(json).toMatchObject({
      script: "backup-to-r2.sh",
      step: "models: sending",
      state: "done",
      files_done: FILES,
      files_total: FILES,
      bytes_done: FILES * FILE_BYTES,
      bytes_total: FILES * FILE_BYTES,
      stalled_seconds: 0,
    });
    expect(json.rate_bytes_per_second, JSON.stringify(json)).toBeGreaterThan(0);
    expect(Date.parse(json.updated_at)).toBeGreaterThanOrEqual(Date.parse(json.started_at));
    // The log file has the same lines as stderr.
    expect(readFileSync(join(root, "var/log/comfyume/backup-to-r2.log"), "utf8")).toContain("PROGRESS models: hashing: files");
  }, 150_000);

  it("a step with no progress for COMFYUME_STALL_SECONDS is reported as stalled, naming the step and the file; the run still succeeds", async () => {
    const { root } = setUp();
    // An rclone whose upload hangs for a while before it starts (a stuck connection).
    const wrapper = join(root, "bin/rclone-slow");
    write(wrapper, '#!/usr/bin/env bash\nfor a in "$@"; do if [[ $a == copy ]]; then sleep 5; fi; done\nexec rclone "$@"\n', 0o755);
    const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", COMFYUME_PROGRESS_SECONDS: "1", COMFYUME_STALL_SECONDS: "2", RCLONE_CMD: wrapper },
      input: r2Secrets(s3),
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    console.log(`[sample] stall lines:\n${r.stderr.split("\n").filter((l) => l.includes("STALLED")).join("\n")}`);
    expect(r.stderr).toMatch(/WARN: STALLED: step 'models: sending' has made no progress for [2-9]s, on '\(rclone copy to r2:comfyume-model-vault-backups\/models\/objects, not started yet\)' \(files 0\/24, bytes 0\/12582912\); still waiting for it, not stopping it/);
    // Not reported while it moved: hashing never stalled.
    expect(r.stderr).not.toMatch(/STALLED: step 'models: hashing'/);
    const json = JSON.parse(readFileSync(join(root, "var/lib/comfyume/progress/backup-to-r2.json"), "utf8"));
    expect(json).toMatchObject({ state: "done", files_done: FILES });
  }, 150_000);

  it("seed-sfs (the morning restore) logs fetch progress against the manifest's totals and writes its JSON file", async () => {
    const { root } = setUp();
    const backup = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" }, input: r2Secrets(s3), timeoutMs: 120_000,
    });
    expect(backup.code, backup.stderr).toBe(0);
    const mkey = /r2:comfyume-model-vault-backups\/(models\/manifests\/\S+\.tsv)/.exec(backup.stderr)![1];
    const dst = tmp("progress-seed");
    mkdirSync(join(dst, "mnt/sfs"), { recursive: true });
    // A slow link (a relay passing ~3 MB/s) makes the 12 MiB fetch last several periods.
    const slow = await slowRelay(s3.endpoint, 3 * 1024 * 1024);
    let r;
    try {
      r = await run("seed-sfs.sh", ["--r2-endpoint", slow.endpoint, "--only", "models", "--manifest", `models=${mkey}`], {
        env: { COMFYUME_ROOT: dst, RCLONE_RETRIES: "1", COMFYUME_PROGRESS_SECONDS: "1" },
        input: r2Secrets(s3),
        timeoutMs: 120_000,
      });
    } finally {
      slow.close();
    }
    expect(r.code, r.stderr).toBe(0);
    console.log(`[sample] restore progress lines:\n${r.stderr.split("\n").filter((l) => l.includes("PROGRESS")).join("\n")}`);
    const fetching = progressLines(r.stderr).filter((l) => l.phase === "models: fetching");
    expect(fetching.length, r.stderr).toBeGreaterThanOrEqual(3);
    for (const l of fetching) expect([l.filesTotal, l.bytesTotal]).toEqual([FILES, FILES * FILE_BYTES]);
    for (let i = 1; i < fetching.length; i++) expect(fetching[i].bytes).toBeGreaterThanOrEqual(fetching[i - 1].bytes);
    expect(fetching[0].bytes).toBeLessThan(FILES * FILE_BYTES);
    expect(fetching[fetching.length - 1]).toMatchObject({ final: true, files: FILES, bytes: FILES * FILE_BYTES });
    const json = JSON.parse(readFileSync(join(dst, "var/lib/comfyume/progress/seed-sfs.json"), "utf8"));
    expect(json).toMatchObject({ script: "seed-sfs.sh", step: "models: fetching", state: "done", files_done: FILES, bytes_done: FILES * FILE_BYTES });
  }, 150_000);

  it("a bad COMFYUME_STALL_SECONDS is refused by name before anything is sent", async () => {
    const { root } = setUp();
    const before = s3.events().length;
    const r = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "models"], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", COMFYUME_STALL_SECONDS: "5m" },
      input: r2Secrets(s3),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("COMFYUME_STALL_SECONDS='5m' is not a whole number of seconds");
    expect(s3.events().slice(before).filter((e) => e.event.startsWith("ObjectCreated") && e.key.startsWith("models/"))).toHaveLength(0);
  });
});
