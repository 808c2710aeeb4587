// The engine evaluation's S3 endpoint: a real S3 server on 127.0.102.0/24 behind a counting proxy.
// restic 0.14 cannot use s3rver (its chunk-signed uploads over plain HTTP are stored undecoded, so
// restic reads back a damaged config: "Unmarshal: invalid character 'b'"), so every engine of the
// comparison runs against the same Go S3 server (versitygw, posix backend): `--s3-server PATH`, or
// COMFYUME_S3_SERVER from .comfyume/tools.env once the s3-endpoint change provides it.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";

export interface Counters { requests: number; byMethod: Record<string, number>; bytesIn: number; bytesOut: number }
/** url: through the counting proxy; directUrl: the server itself (the restore: no proxy on the path, as with R2). */
export interface Endpoint {
  url: string;
  directUrl: string;
  accessKeyId: string;
  secret: string;
  dataDir: string;
  /** CPU seconds the S3 server has used so far (R2's work, which runs on these same cores here). */
  serverCpu: () => number;
  stop: () => void;
}

// COMFYUME_BENCH_S3_HOST: another loopback address when several benches share the machine.
const HOST = process.env.COMFYUME_BENCH_S3_HOST ?? "127.0.102.1";

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((res) => s.listen(0, HOST, res));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const r = request({ host: HOST, port, method: "GET", path: "/" }, (resp) => (resp.resume(), res(true)));
      r.on("error", () => res(false));
      r.end();
    });
    if (ok) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`S3 server on ${HOST}:${port} did not start`);
}

/** Starts SERVER (versitygw) with BUCKETS under WORK/s3, and a proxy that counts into COUNTERS. */
export async function startGoS3(server: string, work: string, buckets: string[], counters: Counters): Promise<Endpoint> {
  const dataDir = join(work, "s3");
  for (const b of buckets) mkdirSync(join(dataDir, b), { recursive: true });
  const accessKeyId = "BENCHKEY";
  const secret = "bench-" + Math.random().toString(36).slice(2);
  const port = await freePort();
  // Object metadata in a sidecar beside the root (versitygw refuses one whose path starts with the root's).
  const meta = join(work, "metadata-s3");
  mkdirSync(meta, { recursive: true });
  // Keys in the environment of the server alone (never on a command line).
  const child = spawn(server, ["--port", `${HOST}:${port}`, "--region", "auto", "--quiet", "posix", "--sidecar", meta, dataDir], {
    env: { PATH: process.env.PATH!, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secret },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitListening(port);
  // Headers (Host included) pass unchanged, so request signatures still verify.
  const proxy = createServer((req, res) => {
    counters.requests++;
    counters.byMethod[req.method!] = (counters.byMethod[req.method!] ?? 0) + 1;
    const up = request({ host: HOST, port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.on("data", (d: Buffer) => (counters.bytesOut += d.length));
      r.pipe(res);
    });
    req.on("data", (d: Buffer) => (counters.bytesIn += d.length));
    req.pipe(up);
    up.on("error", () => res.destroy());
  });
  const proxyPort = await new Promise<number>((res) => proxy.listen(0, HOST, () => res((proxy.address() as { port: number }).port)));
  const serverCpu = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ (100 on Linux)
  };
  return { url: `http://${HOST}:${proxyPort}`, directUrl: `http://${HOST}:${port}`, accessKeyId, secret, dataDir, serverCpu, stop: () => (proxy.close(), child.kill("SIGTERM")) };
}
