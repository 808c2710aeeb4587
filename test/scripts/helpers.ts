// Shared helpers for the host-script tests: run the real scripts with real bash, a real
// S3 endpoint (versitygw, sim/local-cloud/s3-server.ts) on loopback, and recording shims for the few privileged commands
// that cannot run here (mount, systemctl, tailscale, docker).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { tmpdir } from "node:os";
import { afterAll, beforeAll } from "vitest";
import { startS3Server, type S3Event } from "../../sim/local-cloud/s3-server";
import { isAbsolute, join, resolve } from "node:path";

export const REPO = resolve(__dirname, "../..");
export const HOST = join(REPO, "scripts/host");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a host script (a name under scripts/host, or an absolute path to any script) with bash; env
 * is added to a minimal, secret-free environment.
 */
export function run(
  script: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; onSpawn?: (pid: number) => void } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: process.env.HOME ?? "/root",
      LANG: "C.UTF-8",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      ...opts.env,
    };
    // Own process group, like a remote command under sshd: a "dropped connection" signals the group.
    const child = spawn("bash", [isAbsolute(script) ? script : join(HOST, script), ...args], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    if (opts.onSpawn && child.pid) opts.onSpawn(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

const tmpDirs: string[] = [];

export function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `comfyume-hosttest-${prefix}-`));
  tmpDirs.push(d);
  return d;
}

/** Removes every directory made by tmp() in this test file (call from afterAll). */
export function cleanupTmp(): void {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function write(path: string, content: string | Buffer, mode?: number): void {
  mkdirSync(resolve(path, ".."), { recursive: true });
  writeFileSync(path, content);
  if (mode !== undefined) chmodSync(path, mode);
}

export function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Every regular file under dir, relative path -> sha256 (skips paths matching skip). */
export function treeHashes(dir: string, skip: RegExp = /^$/): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (skip.test(r)) continue;
      const st = statSync(p);
      if (st.isDirectory()) walk(p, r);
      else if (st.isFile()) out[r] = sha256(p);
    }
  };
  if (existsSync(dir)) walk(dir, "");
  return out;
}

// ---------- S3 ----------

export const BUCKETS = [
  "comfyume-model-vault-backups",
  "comfyume-cache-backups",
  "comfyume-worker-container-backups",
  "comfyume-user-files-backups",
];

export interface S3 {
  endpoint: string;
  keyId: string;
  secret: string;
  /** The server's own directory (its storage is `data/`); removed by stop(). */
  dir: string;
  stop: () => Promise<void>;
  /** rclone env for direct (test-side) access to the same endpoint. */
  rcloneEnv: Record<string, string>;
  /** Object writes and deletes served, in order, with their sizes. */
  events: () => S3Event[];
  /** "R2 lying": alters an object's stored bytes (same size); listings keep its old ETag and size. */
  corruptObject: (bucket: string, key: string, bytes?: Buffer) => void;
  /** Deletes an object behind the server's back (no event). */
  removeObject: (bucket: string, key: string) => void;
  /** The file holding an object's bytes in the server's storage (for faults such as truncation). */
  objectFile: (bucket: string, key: string) => string;
}

/**
 * One S3 endpoint for a test file: started before its tests, stopped (and the temp dirs removed) after.
 * Returns a view of the running endpoint; reading it outside a test is an error.
 */
export function useS3(host?: string): S3 {
  let started: S3 | undefined;
  beforeAll(async () => {
    started = await startS3(undefined, host);
  });
  afterAll(async () => {
    cleanupTmp();
    await started?.stop();
  });
  return new Proxy({} as S3, {
    get(_target, key) {
      if (!started) throw new Error("the S3 endpoint is not running yet: use it inside a test or hook");
      return started[key as keyof S3];
    },
  });
}

/** host: a loopback address to listen on (default 127.0.0.1; a port is picked by the kernel). */
export async function startS3(secret = "test-secret-" + Math.random().toString(36).slice(2), host?: string): Promise<S3> {
  const dir = tmp("s3");
  const keyId = "TESTKEYID";
  const server = await startS3Server({ dir, buckets: BUCKETS, accessKeyId: keyId, secretAccessKey: secret, host });
  const endpoint = server.endpoint;
  return {
    endpoint,
    keyId,
    secret,
    dir,
    rcloneEnv: {
      RCLONE_CONFIG: "/dev/null",
      RCLONE_CONFIG_R2_TYPE: "s3",
      RCLONE_CONFIG_R2_PROVIDER: "Cloudflare",
      RCLONE_CONFIG_R2_REGION: "auto",
      RCLONE_CONFIG_R2_ENDPOINT: endpoint,
      RCLONE_CONFIG_R2_ACCESS_KEY_ID: keyId,
      RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: secret,
      RCLONE_CONFIG_R2_NO_CHECK_BUCKET: "true",
    },
    events: () => server.events(),
    corruptObject: (bucket, key, bytes) => server.corruptObject(bucket, key, bytes),
    removeObject: (bucket, key) => server.removeObject(bucket, key),
    objectFile: (bucket, key) => server.objectFile(bucket, key),
    stop: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs rclone directly against the test endpoint (used to inspect or tamper with objects). */
export function rclone(s3: S3, args: string[], input?: string | Buffer): Promise<RunResult> {
  return new Promise((res, rej) => {
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...s3.rcloneEnv };
    const child = spawn("rclone", args, { env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", rej);
    child.on("close", (code) => res({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export function r2Secrets(s3: S3): string {
  return `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=${s3.secret}\n`;
}

// ---------- shims for privileged commands ----------

const SHIMS: Record<string, string> = {
  mount: `#!/usr/bin/env bash
# Shim: records the call; an NFS source HOST:/PATH must exist as $SHIM_NFS_EXPORTS/HOST/PATH
# (else fails like mount.nfs); a successful mount is listed in $SHIM_STATE/mounts (proc format).
printf 'mount %s\\n' "$*" >>"$SHIM_STATE/calls.log"
type=auto opts=defaults args=()
while (($#)); do case $1 in -t) type=$2; shift 2 ;; -o) opts=$2; shift 2 ;; *) args+=("$1"); shift ;; esac; done
src=\${args[0]} tgt=\${args[1]}
if [[ $type == nfs ]]; then
  host=\${src%%:*} path=\${src#*:}
  if [[ ! -d "$SHIM_NFS_EXPORTS/$host$path" ]]; then
    echo "mount.nfs: access denied by server while mounting $src" >&2
    exit 32
  fi
fi
[[ -d $tgt ]] || { echo "mount: $tgt: mount point does not exist." >&2; exit 32; }
printf '%s %s %s %s 0 0\\n' "$src" "$tgt" "$type" "$opts" >>"$SHIM_STATE/mounts"
`,
  mountpoint: `#!/usr/bin/env bash
# Shim: a directory is a mount point when $SHIM_STATE/mounts lists it.
[[ $1 == -q ]] && shift
awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' "$SHIM_STATE/mounts" 2>/dev/null
`,
  systemctl: `#!/usr/bin/env bash
# Shim: unit state is a file per active unit under $SHIM_STATE/units.
printf 'systemctl %s\\n' "$*" >>"$SHIM_STATE/calls.log"
mkdir -p "$SHIM_STATE/units"
cmd=$1; shift
[[ \${1:-} == --quiet ]] && shift
case $cmd in
  start|restart) touch "$SHIM_STATE/units/$1" ;;
  stop) rm -f "$SHIM_STATE/units/$1" ;;
  is-active) [[ -f "$SHIM_STATE/units/$1" ]] ;;
  *) echo "systemctl shim: unsupported $cmd" >&2; exit 1 ;;
esac
`,
  tailscale: `#!/usr/bin/env bash
# Shim: the node address comes from the identity in $COMFYUME_ROOT/var/lib/tailscale/tailscaled.state;
# "up" without a restored identity creates a fresh one with a new address, as the real one does.
printf 'tailscale %s\\n' "$*" >>"$SHIM_STATE/calls.log"
state="$COMFYUME_ROOT/var/lib/tailscale/tailscaled.state"
case $1 in
  ip)
    [[ -f "$SHIM_STATE/units/tailscaled" && -f "$SHIM_STATE/ts-up" ]] || { echo "Tailscale is stopped." >&2; exit 1; }
    sed -n 's/^ip=//p' "$state" ;;
  up)
    [[ -f "$SHIM_STATE/units/tailscaled" ]] || { echo "failed to connect to local tailscaled" >&2; exit 1; }
    key=""
    for a in "$@"; do [[ $a == --auth-key=file:* ]] && key=$(cat "\${a#--auth-key=file:}"); done
    [[ -n $key ]] || { echo "auth key required" >&2; exit 1; }
    printf '%s' "$key" >"$SHIM_STATE/ts-auth-key-received"
    if [[ ! -f $state ]]; then mkdir -p "$(dirname "$state")"; printf 'ip=100.64.0.99\\nkey=fresh\\n' >"$state"; fi
    touch "$SHIM_STATE/ts-up" ;;
  *) echo "tailscale shim: unsupported $1" >&2; exit 1 ;;
esac
`,
  docker: `#!/usr/bin/env bash
# Shim: "docker load" records the image id from the tarball's manifest.json; compose up marks
# the service running (and needs the image and the env file).
printf 'docker %s\\n' "$*" >>"$SHIM_STATE/calls.log"
images="$SHIM_STATE/docker-images"
touch "$images"
case $1 in
  image)
    id=\${@: -1}
    grep -qx "$id" "$images" && echo "$id" || { echo "Error: No such image: $id" >&2; exit 1; } ;;
  load)
    id=$(tar -xzOf "$3" manifest.json | jq -r '.[0].Config') || exit 1
    id=\${id##*/}; id=sha256:\${id%.json}
    echo "$id" >>"$images"
    echo "Loaded image ID: $id" ;;
  compose)
    svc=\${@: -1} envfile=""
    prev=""; for a in "$@"; do [[ $prev == --env-file ]] && envfile=$a; prev=$a; done
    if [[ " $* " == *" up "* ]]; then
      [[ -s $images ]] || { echo "no image" >&2; exit 1; }
      [[ -f $envfile ]] || { echo "env file $envfile not found" >&2; exit 1; }
      touch "$SHIM_STATE/running-$svc"
    elif [[ " $* " == *" ps "* ]]; then
      [[ -f "$SHIM_STATE/running-$svc" ]] && echo "c0ffee$svc"
    fi ;;
  *) echo "docker shim: unsupported $1" >&2; exit 1 ;;
esac
`,
};

export interface Shims {
  dir: string;
  state: string;
  nfsExports: string;
  env: Record<string, string>;
  calls: () => string[];
}

export function makeShims(): Shims {
  const base = tmp("shims");
  const dir = join(base, "bin");
  const state = join(base, "state");
  const nfsExports = join(base, "nfs");
  mkdirSync(dir, { recursive: true });
  mkdirSync(state, { recursive: true });
  mkdirSync(nfsExports, { recursive: true });
  writeFileSync(join(state, "mounts"), "");
  writeFileSync(join(state, "calls.log"), "");
  for (const [name, body] of Object.entries(SHIMS)) write(join(dir, name), body, 0o755);
  return {
    dir,
    state,
    nfsExports,
    env: {
      SHIM_STATE: state,
      SHIM_NFS_EXPORTS: nfsExports,
      MOUNT_CMD: join(dir, "mount"),
      MOUNTPOINT_CMD: join(dir, "mountpoint"),
      PROC_MOUNTS: join(state, "mounts"),
      SYSTEMCTL_CMD: join(dir, "systemctl"),
      TAILSCALE_CMD: join(dir, "tailscale"),
      DOCKER_CMD: join(dir, "docker"),
    },
    calls: () => readFileSync(join(state, "calls.log"), "utf8").split("\n").filter(Boolean),
  };
}

// ---------- fake ComfyUI (HTTP) and Redis (RESP) on loopback ----------

export async function startComfyUi(): Promise<{ url: string; server: HttpServer }> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("ComfyUI");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/`, server };
}

export async function startRedis(password: string): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer((sock) => {
    let authed = password === "";
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      // Minimal RESP: commands arrive as arrays of bulk strings.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buf);
        if (!m) return;
        let rest = buf.slice(m[0].length);
        const parts: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const b = /^\$(\d+)\r\n/.exec(rest);
          if (!b || rest.length < b[0].length + Number(b[1]) + 2) return;
          parts.push(rest.slice(b[0].length, b[0].length + Number(b[1])));
          rest = rest.slice(b[0].length + Number(b[1]) + 2);
        }
        buf = rest;
        const cmd = parts[0]?.toUpperCase();
        if (cmd === "AUTH") {
          authed = parts[1] === password;
          sock.write(authed ? "+OK\r\n" : "-WRONGPASS invalid password\r\n");
        } else if (cmd === "PING") {
          sock.write(authed ? "+PONG\r\n" : "-NOAUTH Authentication required.\r\n");
        } else sock.write("-ERR unknown\r\n");
      }
    });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, server };
}

// ---------- fixtures ----------

/** A `docker save`-shaped tarball (manifest.json naming the config blob) with an image id. */
export function makeWorkerTarball(path: string, seed: string): string {
  const d = tmp("img");
  const config = JSON.stringify({ architecture: "amd64", seed });
  const id = createHash("sha256").update(config).digest("hex");
  write(join(d, "blobs/sha256", id), config);
  write(join(d, "manifest.json"), JSON.stringify([{ Config: `blobs/sha256/${id}`, RepoTags: ["comfyui-worker:test"], Layers: [] }]));
  write(join(d, "layer.bin"), Buffer.alloc(64 * 1024, seed));
  mkdirSync(resolve(path, ".."), { recursive: true });
  const r = spawnSync("tar", ["-czf", path, "-C", d, "manifest.json", "blobs", "layer.bin"]);
  if (r.status !== 0) throw new Error("tar failed");
  rmSync(d, { recursive: true, force: true });
  return `sha256:${id}`;
}

/** An instance host root with a Tailscale identity, SSH host keys and a project checkout. */
export function makeInstanceRoot(root: string, tsIp: string): void {
  write(join(root, "var/lib/tailscale/tailscaled.state"), `ip=${tsIp}\nkey=${"k".repeat(40)}\n`, 0o600);
  write(join(root, "etc/ssh/ssh_host_ed25519_key"), "PRIVATE-HOST-KEY-" + tsIp + "\n", 0o600);
  write(join(root, "etc/ssh/ssh_host_ed25519_key.pub"), "ssh-ed25519 AAAA host\n", 0o644);
  write(join(root, "etc/ssh/sshd_config"), "PermitRootLogin prohibit-password\n");
  const p = join(root, "home/dev/comfyume");
  write(join(p, "README.md"), "# comfyume\n");
  write(join(p, "comfyui-worker/docker-compose.yml"), "services:\n  worker-1:\n    image: comfyui-worker:test\n");
  write(join(p, "comfyui-worker/worker.py"), "print('worker')\n");
  write(join(p, ".env"), "PROJECT_NAME=comfyume\nREDIS_HOST=100.64.0.1\nREDIS_PASSWORD=\n", 0o600);
  write(join(p, "data/outputs/user001/out.png"), "not backed up by backup-instance");
}
