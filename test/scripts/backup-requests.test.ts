// The nightly backup at workshop scale (issue 13): a night with nothing changed costs a number of S3
// requests and rclone starts that does not grow with the number of files (listings are paged 1,000
// keys at a time, one listing per set, no request per object), and the sets run side by side.
// Real bash, real rclone, the real S3 endpoint behind a counting proxy on 127.0.110.0/24; speed itself
// is in `npm run bench:scale`.
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { r2Secrets, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();
const FILES = 300;
/** R2_BACKUP_PARALLEL=1 (one set after another, as before) shows the barrier test can fail. */
const parallelism: Record<string, string> = process.env.TEST_BACKUP_PARALLEL ? { R2_BACKUP_PARALLEL: process.env.TEST_BACKUP_PARALLEL } : {};

/** A proxy in front of the test endpoint counting requests by method (headers pass unchanged: signatures hold). */
let proxy: Server;
let proxyUrl = "";
const counted: string[] = [];
beforeAll(async () => {
  const target = new URL(s3.endpoint);
  proxy = createServer((req, res) => {
    counted.push(`${req.method} ${req.url}`);
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
    up.on("error", () => res.destroy());
  });
  const port = await new Promise<number>((res) => proxy.listen(0, "127.0.110.1", () => res((proxy.address() as { port: number }).port)));
  proxyUrl = `http://127.0.110.1:${port}`;
});
afterAll(() => new Promise<void>((res) => proxy.close(() => res())));

/** An RCLONE_CMD that records each start's subcommand. */
function countingRclone(dir: string): { cmd: string; starts: () => string[] } {
  const log = join(dir, "rclone.log");
  writeFileSync(log, "");
  const cmd = join(dir, "rclone-counting");
  writeFileSync(cmd, `#!/bin/bash\nfor a in "$@"; do case $a in -*) ;; *) printf '%s\\n' "$a" >>${JSON.stringify(log)}; break ;; esac; done\nexec rclone "$@"\n`);
  chmodSync(cmd, 0o755);
  return { cmd, starts: () => readFileSync(log, "utf8").split("\n").filter(Boolean) };
}

describe("a night with nothing changed", () => {
  it(`costs a bounded number of S3 requests and rclone starts for ${FILES} files in two sets`, async () => {
    const root = tmp("requests");
    const data = join(root, "data");
    for (let i = 0; i < FILES; i++) write(join(data, `${i % 4 === 0 ? "inputs" : "outputs"}/user${i % 20}/img-${i}.png`), randomBytes(512 + i));
    const prefix = `t-requests-${randomBytes(4).toString("hex")}`;
    const args = ["--r2-endpoint", proxyUrl, "--data-dir", data, "--dirs", "inputs,outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    const night1 = await run("backup-mello.sh", args, { env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" }, input: r2Secrets(s3), timeoutMs: 120_000 });
    expect(night1.code, night1.stderr).toBe(0);

    await new Promise((r) => setTimeout(r, 1100));
    const rc = countingRclone(tmp("rclone"));
    counted.length = 0;
    const night2 = await run("backup-mello.sh", args, { env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_CMD: rc.cmd }, input: r2Secrets(s3), timeoutMs: 120_000 });
    expect(night2.code, night2.stderr).toBe(0);
    expect(night2.stderr).toContain(`reused ${FILES - FILES / 4} file(s)`);
    // Per set: one listing of the set (objects and manifests), the last manifest (3), the rotating
    // read-back (a listing and a GET per sampled object: 1-5 here), the new manifest up (4) and read
    // back (2). Nothing per file (before: 645 requests, 620 of them a HEAD per object).
    const byMethod = counted.reduce<Record<string, number>>((a, l) => ((a[l.split(" ")[0]!] = (a[l.split(" ")[0]!] ?? 0) + 1), a), {});
    expect(counted.length, `${JSON.stringify(byMethod)}\n${counted.join("\n")}`).toBeLessThanOrEqual(40);
    expect(rc.starts().length, rc.starts().join(" ")).toBeLessThanOrEqual(2 * 5);
  }, 240_000);

  it("runs the sets side by side: each set's listing waits for the other's (a barrier that one-after-another never passes)", async () => {
    const root = tmp("parallel");
    const data = join(root, "data");
    write(join(data, "inputs/user0/a.png"), randomBytes(2000));
    write(join(data, "outputs/user0/b.png"), randomBytes(3000));
    const dir = tmp("barrier");
    const cmd = join(dir, "rclone-barrier");
    // Every set starts with one listing (lsjson): each waits, boundedly, until both sets have arrived.
    writeFileSync(
      cmd,
      `#!/bin/bash
if [[ " $* " == *" lsjson "* ]]; then
  touch ${JSON.stringify(dir)}/arrived.$$
  for _ in $(seq 100); do (($(ls ${JSON.stringify(dir)} | grep -c '^arrived') >= 2)) && break; sleep 0.1; done
  (($(ls ${JSON.stringify(dir)} | grep -c '^arrived') >= 2)) || { echo "barrier: the other set never listed alongside" >&2; exit 1; }
fi
exec rclone "$@"
`,
    );
    chmodSync(cmd, 0o755);
    const prefix = `t-parallel-${randomBytes(4).toString("hex")}`;
    const args = ["--r2-endpoint", s3.endpoint, "--data-dir", data, "--dirs", "inputs,outputs", "--prefix", prefix, "--state-dir", join(root, "state")];
    const r = await run("backup-mello.sh", args, { env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", RCLONE_CMD: cmd, ...parallelism }, input: r2Secrets(s3), timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    // Both sets' lines, each set's together, and the summary names both steps.
    expect(r.stderr).toMatch(/step inputs: done[\s\S]*step outputs: done/);
    expect(r.stderr).toMatch(/inputs\s+[\d.]+\s+sent \d+ of 2000 bytes/);
    expect(r.stderr).toMatch(/outputs\s+[\d.]+\s+sent \d+ of 3000 bytes/);
  }, 120_000);
});
