// A real S3 server on loopback for the tests and the simulated cloud: versitygw (built by
// `npm run setup`, path in COMFYUME_S3_SERVER) with its POSIX backend. Each object is a plain file
// `<dataDir>/<bucket>/<key>`; its ETag and metadata live in user xattrs on that file, so bytes changed
// in place keep the ETag and size the server reports ("R2 lying"). SigV4 signatures are checked.
// Object writes and deletes are read back from the server's access log (written before each reply).
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmdirSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import * as path from "node:path";

export interface S3ServerOptions {
  /** A directory the server owns: `data/` (buckets and objects), `access.log`, `server.log`. */
  dir: string;
  /** Buckets created through the S3 API as the server starts (before startS3Server resolves). */
  buckets: readonly string[];
  accessKeyId: string;
  secretAccessKey: string;
  /** Loopback address to listen on (a free port is picked by the kernel); default 127.0.0.1. */
  host?: string;
}

export interface S3Event {
  /** `ObjectCreated:Put|Copy|Post|CompleteMultipartUpload` or `ObjectRemoved:Delete|DeleteObjects`. */
  event: string;
  bucket?: string;
  key: string;
  /** Bytes of the object written (0 for deletes). */
  size: number;
}

export interface S3Server {
  endpoint: string;
  /** `<dataDir>/<bucket>/<key>` holds an object's bytes (read it; change it only through the methods below). */
  dataDir: string;
  /** Object writes and deletes served, in order (how tests count the bytes really sent). */
  events(): S3Event[];
  /** Alters the stored bytes in place (same size; the server keeps reporting the old ETag and size). */
  corruptObject(bucket: string, key: string, bytes?: Buffer): void;
  /** Deletes an object behind the server's back (as an operator would in R2's console): no event. */
  removeObject(bucket: string, key: string): void;
  /** The file holding an object's bytes. */
  objectFile(bucket: string, key: string): string;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;

export function s3ServerBinary(): string {
  const binary = process.env.COMFYUME_S3_SERVER;
  if (!binary || !existsSync(binary))
    throw new Error(
      `the S3 server standing in for R2 (versitygw) is ${binary ? `missing at COMFYUME_S3_SERVER=${binary}` : "not configured: COMFYUME_S3_SERVER is unset"}; ` +
        "run `npm run setup` (it builds it and writes .comfyume/tools.env), then run through scripts/node-env (npm test does)",
    );
  return binary;
}

/**
 * Buckets are made through the S3 API (CreateBucket), not as bare directories: versitygw keeps a bucket's
 * owner and ACL in xattrs of its directory, and answers 500 ("get bucket acl: no such key") to a client
 * that checks a bucket made behind its back (rclone does, unless told --s3-no-check-bucket).
 */
function createBuckets(endpoint: string, o: S3ServerOptions): void {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: o.dir, RCLONE_CONFIG: "/dev/null", RCLONE_CONFIG_S3_TYPE: "s3", RCLONE_CONFIG_S3_PROVIDER: "Cloudflare",
    RCLONE_CONFIG_S3_REGION: "auto", RCLONE_CONFIG_S3_ENDPOINT: endpoint,
    RCLONE_CONFIG_S3_ACCESS_KEY_ID: o.accessKeyId, RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: o.secretAccessKey,
  };
  for (const bucket of o.buckets) {
    const r = spawnSync("rclone", ["mkdir", "--retries", "1", "--low-level-retries", "3", `s3:${bucket}`], { env, encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`the S3 server (versitygw) did not create bucket ${bucket}: ${(r.stderr || r.error?.message || "").trim().split("\n").slice(-1)[0]}`);
  }
}

export async function startS3Server(o: S3ServerOptions): Promise<S3Server> {
  const binary = s3ServerBinary();
  const host = o.host ?? "127.0.0.1";
  const dataDir = path.join(o.dir, "data");
  const accessLog = path.join(o.dir, "access.log");
  mkdirSync(dataDir, { recursive: true });
  checkUserXattrs(dataDir);
  const serverLog = openSync(path.join(o.dir, "server.log"), "a");
  // Credentials go through the environment of the server alone, never its command line.
  // Region "auto": what R2 clients sign with (the host scripts' rclone sets it; R2 also takes us-east-1).
  const child = spawn(binary, ["--port", `${host}:0`, "--region", "auto", "--quiet", "--access-log", accessLog, "posix", dataDir], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: o.dir, ROOT_ACCESS_KEY_ID: o.accessKeyId, ROOT_SECRET_ACCESS_KEY: o.secretAccessKey },
    stdio: ["ignore", serverLog, serverLog],
  });
  closeSync(serverLog);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let port: number;
  try {
    port = await listeningPort(child.pid!, host, () => child.exitCode !== null || child.signalCode !== null);
  } catch (err) {
    child.kill("SIGKILL");
    const tail = readFileSync(path.join(o.dir, "server.log"), "utf8").trim().split("\n").slice(-3).join(" | ");
    throw new Error(`the S3 server (versitygw) did not start: ${(err as Error).message}${tail ? `; its log: ${tail}` : ""}`);
  }
  try {
    createBuckets(`http://${host}:${port}`, o);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const objectFile = (bucket: string, key: string) => path.join(dataDir, bucket, ...key.split("/"));
  const log = new AccessLog(accessLog, objectFile);
  return {
    endpoint: `http://${host}:${port}`,
    dataDir,
    events: () => log.events(),
    objectFile,
    corruptObject: (bucket, key, bytes) => corruptFile(objectFile(bucket, key), bytes),
    removeObject(bucket, key) {
      const file = objectFile(bucket, key);
      if (!existsSync(file)) throw new Error(`removeObject: no object ${bucket}/${key} in the S3 server's storage`);
      rmSync(file);
      // Empty parent directories would show as folders in listings; R2 has none.
      for (let dir = path.dirname(file); dir !== path.join(dataDir, bucket) && readdirSync(dir).length === 0; dir = path.dirname(dir)) rmdirSync(dir);
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

const xattrsChecked = new Set<number>();

/** versitygw keeps ETags in user xattrs: refuse a storage filesystem without them, naming the fix. */
function checkUserXattrs(dir: string): void {
  const dev = statSync(dir).dev;
  if (xattrsChecked.has(dev)) return;
  const probe = spawnSync("setfattr", ["-n", "user.comfyume-probe", "-v", "1", dir], { encoding: "utf8" });
  if (probe.error) throw new Error(`setfattr is missing (Debian package attr): run \`npm run setup\` (${probe.error.message})`);
  if (probe.status !== 0)
    throw new Error(
      `the S3 server's storage ${dir} refuses user xattrs (${probe.stderr.trim()}); versitygw keeps ETags in them: ` +
        "set TMPDIR to a directory on ext4, xfs, btrfs or tmpfs",
    );
  spawnSync("setfattr", ["-x", "user.comfyume-probe", dir]);
  xattrsChecked.add(dev);
}

/** Overwrites the first bytes (default: the first 64 flipped) keeping size and timestamps. */
function corruptFile(file: string, bytes?: Buffer): void {
  const st = statSync(file);
  if (bytes && bytes.length > st.size) throw new Error(`corruptObject: ${bytes.length} bytes are longer than the object (${st.size} bytes): the size must stay`);
  const fd = openSync(file, "r+");
  try {
    let patch = bytes;
    if (!patch) {
      patch = Buffer.alloc(Math.min(64, st.size));
      readSync(fd, patch, 0, patch.length, 0);
      for (let i = 0; i < patch.length; i++) patch[i] = patch[i]! ^ 0xff;
    }
    writeSync(fd, patch, 0, patch.length, 0);
  } finally {
    closeSync(fd);
  }
  utimesSync(file, st.atime, st.mtime);
}

/**
 * The TCP port a process listens on at `host`, found through /proc (the server is started on port 0,
 * so two servers can never race for a port): its socket inodes matched against /proc/net/tcp.
 */
async function listeningPort(pid: number, host: string, gone: () => boolean): Promise<number> {
  const hexHost = host.split(".").map((n) => Number(n).toString(16).padStart(2, "0").toUpperCase()).reverse().join("");
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (gone()) throw new Error("it exited before listening");
    const inodes = new Set<string>();
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      }
    } catch {
      // the process is gone or not yet readable; checked on the next round
    }
    if (inodes.size) {
      for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        const [addr, portHex] = (f[1] ?? "").split(":");
        if (f[3] === "0A" && addr === hexHost && inodes.has(f[9] ?? "")) return parseInt(portHex!, 16);
      }
    }
    if (Date.now() > deadline) throw new Error(`no listening socket on ${host} within ${START_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return "";
  }
}

const CREATED: Record<string, string> = {
  s3_PutObject: "ObjectCreated:Put",
  s3_CopyObject: "ObjectCreated:Copy",
  s3_PostObject: "ObjectCreated:Post",
  s3_CompleteMultipartUpload: "ObjectCreated:CompleteMultipartUpload",
};
const REMOVED: Record<string, string> = { s3_DeleteObject: "ObjectRemoved:Delete", s3_DeleteObjects: "ObjectRemoved:DeleteObjects" };
// bucket-owner bucket [time] remote-ip requester request-id operation key request-uri status error bytes-sent object-size ...
const LINE = /^\S+ (\S+) \[[^\]]*\] \S+ \S+ \S+ (\S+) .*? (\/\S*) (\d{3}) \S+ \d+ (-?\d+) /;

/** The server's access log, parsed incrementally into object events. */
class AccessLog {
  private offset = 0;
  private partial = "";
  private readonly parsed: S3Event[] = [];

  constructor(
    private readonly file: string,
    private readonly objectFile: (bucket: string, key: string) => string,
  ) {}

  events(): S3Event[] {
    if (!existsSync(this.file)) return [...this.parsed];
    const fd = openSync(this.file, "r");
    try {
      const chunk = Buffer.alloc(1 << 20);
      for (let n; (n = readSync(fd, chunk, 0, chunk.length, this.offset)) > 0; ) {
        this.offset += n;
        const text = this.partial + chunk.subarray(0, n).toString("utf8");
        const lines = text.split("\n");
        this.partial = lines.pop()!;
        for (const line of lines) this.add(line);
      }
    } finally {
      closeSync(fd);
    }
    return [...this.parsed];
  }

  private add(line: string): void {
    const m = LINE.exec(line);
    if (!m) return;
    const [, bucket, operation, uri, status, loggedSize] = m;
    const event = CREATED[operation!] ?? REMOVED[operation!];
    if (!event || !status!.startsWith("2")) return;
    // The key as requested (path-style URI), decoded; the log's own key column is not escaped.
    const key = uri!.split("?")[0]!.split("/").slice(2).map(decodeURIComponent).join("/");
    let size = 0;
    if (operation === "s3_PutObject" || operation === "s3_PostObject") size = Number(loggedSize);
    else if (CREATED[operation!]) size = this.storedSize(bucket!, key);
    this.parsed.push({ event, bucket, key, size });
  }

  /** Completed multipart uploads and copies log no size: the stored object's, when read. */
  private storedSize(bucket: string, key: string): number {
    try {
      return statSync(this.objectFile(bucket, key)).size;
    } catch {
      return 0;
    }
  }
}
