// A real SSH server on 127.0.0.1 for tests and rehearsals: ssh2.Server with public-key auth, exec requests
// run by real `bash -c` (stdin/stdout/stderr piped, exit status, killed when the channel closes), and an SFTP
// subsystem mapped onto a local root directory. Stands in for a Verda instance or the mello VPS.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, promises as fsp, rmSync, type Stats } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type Connection, type PublicKeyAuthContext, Server, type ServerChannel, type SFTPWrapper, utils } from "ssh2";

export interface SshHostOptions {
  /** authorized_keys line(s) accepted for any user name. */
  authorizedKey: string | string[];
  /** Host private key (OpenSSH format). Default: a fresh ed25519 key. */
  hostKey?: string;
  /** Fixed port (e.g. to start the host after a client began dialing). Default: any free port. */
  port?: number;
  /** Extra environment for commands (on top of PATH, HOME, SHELL, USER, LANG, SSH_HOST_ROOT). */
  shellEnv?: Record<string, string>;
  /** Working directory of commands. Default: `root`. */
  cwd?: string;
  /** Local directory that SFTP paths are mapped under ("/opt/x" → `${root}/opt/x`). Default: a temp dir. */
  root?: string;
  /** Loopback address to listen on (any of 127.0.0.0/8, one per simulated host). Default 127.0.0.1. */
  bindAddress?: string;
  /** Program and arguments run instead of `bash -c`, with the command string appended (e.g. a namespace wrapper). */
  execWrapper?: string[];
}

export interface ExecRecord {
  user: string;
  command: string;
}

export interface SshHost {
  host: string;
  port: number;
  /** Public host key, authorized_keys format ("ssh-ed25519 AAAA..."): what clients pin. */
  hostKey: string;
  root: string;
  /** Every exec request received, in order (stdin is not recorded). */
  execLog: ExecRecord[];
  close(): Promise<void>;
}

/** A fresh ed25519 key pair: `privateKey` (OpenSSH) and `publicKey` (authorized_keys line). */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  // ssh2 1.17 occasionally (~1 in 400) emits an ed25519 key that its own parser rejects: draw again.
  for (let attempt = 1; ; attempt++) {
    const pair = utils.generateKeyPairSync("ed25519");
    if (!(utils.parseKey(pair.private) instanceof Error) || attempt >= 20) {
      return { privateKey: pair.private, publicKey: publicKeyLine(pair.private) };
    }
  }
}

/** authorized_keys line ("type base64") for a private or public key. */
export function publicKeyLine(key: string): string {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
}

export async function startSshHost(options: SshHostOptions): Promise<SshHost> {
  const hostPrivateKey = options.hostKey ?? generateKeyPair().privateKey;
  const ownsRoot = options.root === undefined;
  const root = options.root ?? mkdtempSync(path.join(tmpdir(), "ssh-host-"));
  const authorized = [options.authorizedKey].flat().map((line) => {
    const parsed = utils.parseKey(line);
    if (parsed instanceof Error) throw new Error(`authorizedKey: ${parsed.message}`);
    return parsed;
  });
  const execLog: ExecRecord[] = [];
  const connections = new Set<Connection>();
  const children = new Set<ChildProcess>();
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: root,
    SHELL: "/bin/bash",
    LANG: "C.UTF-8",
    SSH_HOST_ROOT: root,
    ...options.shellEnv,
  };

  const server = new Server({ hostKeys: [hostPrivateKey] }, (connection) => {
    connections.add(connection);
    let user = "";
    connection.on("close", () => connections.delete(connection));
    connection.on("error", () => undefined); // clients that vanish are normal in tests
    connection.on("authentication", (ctx) => {
      user = ctx.username;
      if (ctx.method !== "publickey" || !isAuthorized(ctx, authorized)) return ctx.reject(["publickey"]);
      ctx.accept();
    });
    connection.on("session", (acceptSession) => {
      const session = acceptSession();
      session.on("exec", (accept, _reject, info) => {
        execLog.push({ user, command: info.command });
        const argv = options.execWrapper ? [...options.execWrapper, info.command] : ["bash", "-c", info.command];
        runExec(accept(), argv, { cwd: options.cwd ?? root, env: { ...env, USER: user } }, children);
      });
      session.on("sftp", (accept) => serveSftp(accept(), root));
      session.on("env", (_accept, reject) => reject?.());
      session.on("pty", (_accept, reject) => reject?.());
      session.on("shell", (_accept, reject) => reject());
    });
  });

  const bindAddress = options.bindAddress ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, bindAddress, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    host: bindAddress,
    port,
    hostKey: publicKeyLine(hostPrivateKey),
    root,
    execLog,
    async close() {
      for (const child of children) killGroup(child);
      for (const connection of connections) connection.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsRoot) rmSync(root, { recursive: true, force: true });
    },
  };
}

function isAuthorized(ctx: PublicKeyAuthContext, authorized: ReturnType<typeof utils.parseKey>[]): boolean {
  const match = authorized.find(
    (key) => !(key instanceof Error) && key.type === ctx.key.algo && key.getPublicSSH().equals(ctx.key.data),
  );
  if (!match || match instanceof Error) return false;
  // Without a signature the client only asks whether the key would be accepted.
  if (!ctx.signature || !ctx.blob) return true;
  return match.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
}

function runExec(
  channel: ServerChannel, argv: string[], spawnOptions: { cwd: string; env: Record<string, string> },
  children: Set<ChildProcess>,
): void {
  // Own process group, so closing the channel can kill the script and everything it started.
  const child = spawn(argv[0]!, argv.slice(1), { ...spawnOptions, detached: true, stdio: "pipe" });
  children.add(child);
  let done = false;
  child.stdin.on("error", () => undefined); // the script may exit without reading stdin
  channel.pipe(child.stdin);
  child.stdout.on("data", (chunk: Buffer) => channel.write(chunk));
  child.stderr.on("data", (chunk: Buffer) => channel.stderr.write(chunk));
  child.on("error", (error) => {
    done = true;
    channel.stderr.write(`exec failed: ${error.message}\n`);
    channel.exit(127);
    channel.end();
  });
  // "close" fires once the process exited and its output pipes closed, like sshd waiting for EOF.
  child.on("close", (code, signal) => {
    children.delete(child);
    if (done) return;
    done = true;
    if (code !== null) channel.exit(code);
    else channel.exit((signal ?? "KILL").replace(/^SIG/, ""), false, "");
    channel.end();
  });
  channel.on("close", () => {
    if (!done) killGroup(child);
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function serveSftp(sftp: SFTPWrapper, root: string): void {
  const { STATUS_CODE } = utils.sftp;
  const handles = new Map<string, { fd: fsp.FileHandle }>();
  let nextHandle = 0;
  const local = (remote: string) => path.join(root, path.posix.normalize("/" + remote));
  const fail = (reqId: number, error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    const status = code === "ENOENT" ? STATUS_CODE.NO_SUCH_FILE
      : code === "EACCES" || code === "EPERM" ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.FAILURE;
    sftp.status(reqId, status, (error as Error).message);
  };
  const respond = (reqId: number, work: () => Promise<void>) => {
    work().then(() => sftp.status(reqId, STATUS_CODE.OK), (error: unknown) => fail(reqId, error));
  };
  const withHandle = (reqId: number, handle: Buffer, use: (fd: fsp.FileHandle) => Promise<void>) => {
    const entry = handles.get(handle.toString("hex"));
    if (!entry) return sftp.status(reqId, STATUS_CODE.FAILURE, "invalid handle");
    use(entry.fd).catch((error: unknown) => fail(reqId, error));
  };
  const sendAttrs = (reqId: number, stats: Stats) =>
    sftp.attrs(reqId, {
      mode: stats.mode, uid: stats.uid, gid: stats.gid, size: stats.size,
      atime: Math.floor(stats.atimeMs / 1000), mtime: Math.floor(stats.mtimeMs / 1000),
    });

  sftp.on("OPEN", (reqId, filename, flags, attrs) => {
    const mode = utils.sftp.flagsToString(flags);
    if (!mode) return sftp.status(reqId, STATUS_CODE.OP_UNSUPPORTED, "unsupported open flags");
    fsp.open(local(filename), mode, attrs.mode ?? 0o666).then((fd) => {
      const handle = Buffer.alloc(4);
      handle.writeUInt32BE(nextHandle++);
      handles.set(handle.toString("hex"), { fd });
      sftp.handle(reqId, handle);
    }, (error: unknown) => fail(reqId, error));
  });
  sftp.on("WRITE", (reqId, handle, offset, data) =>
    withHandle(reqId, handle, async (fd) => {
      await fd.write(data, 0, data.length, offset);
      sftp.status(reqId, STATUS_CODE.OK);
    }));
  sftp.on("READ", (reqId, handle, offset, length) =>
    withHandle(reqId, handle, async (fd) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await fd.read(buffer, 0, length, offset);
      if (bytesRead === 0) sftp.status(reqId, STATUS_CODE.EOF);
      else sftp.data(reqId, buffer.subarray(0, bytesRead));
    }));
  sftp.on("FSTAT", (reqId, handle) => withHandle(reqId, handle, async (fd) => sendAttrs(reqId, await fd.stat())));
  sftp.on("FSETSTAT", (reqId, handle, attrs) =>
    withHandle(reqId, handle, async (fd) => {
      if (attrs.mode !== undefined) await fd.chmod(attrs.mode & 0o7777);
      sftp.status(reqId, STATUS_CODE.OK);
    }));
  sftp.on("CLOSE", (reqId, handle) => {
    const key = handle.toString("hex");
    const entry = handles.get(key);
    if (!entry) return sftp.status(reqId, STATUS_CODE.FAILURE, "invalid handle");
    handles.delete(key);
    respond(reqId, () => entry.fd.close());
  });
  sftp.on("STAT", (reqId, remote) => fsp.stat(local(remote)).then((stats) => sendAttrs(reqId, stats), (e: unknown) => fail(reqId, e)));
  sftp.on("LSTAT", (reqId, remote) => fsp.lstat(local(remote)).then((stats) => sendAttrs(reqId, stats), (e: unknown) => fail(reqId, e)));
  sftp.on("SETSTAT", (reqId, remote, attrs) =>
    respond(reqId, async () => {
      if (attrs.mode !== undefined) await fsp.chmod(local(remote), attrs.mode & 0o7777);
    }));
  sftp.on("MKDIR", (reqId, remote, attrs) => respond(reqId, () => fsp.mkdir(local(remote), attrs.mode ?? 0o755).then(() => undefined)));
  sftp.on("RMDIR", (reqId, remote) => respond(reqId, () => fsp.rmdir(local(remote))));
  sftp.on("REMOVE", (reqId, remote) => respond(reqId, () => fsp.unlink(local(remote))));
  sftp.on("RENAME", (reqId, from, to) =>
    respond(reqId, async () => {
      // SFTPv3 (and OpenSSH's plain rename) refuse to replace an existing target.
      const exists = await fsp.lstat(local(to)).then(() => true, () => false);
      if (exists) throw Object.assign(new Error(`${to} already exists`), { code: "EEXIST" });
      await fsp.rename(local(from), local(to));
    }));
  sftp.on("REALPATH", (reqId, remote) => {
    const resolved = path.posix.normalize("/" + remote);
    sftp.name(reqId, [{ filename: resolved, longname: resolved, attrs: {} as never }]);
  });
  for (const unsupported of ["OPENDIR", "READDIR", "READLINK", "SYMLINK", "EXTENDED"] as const) {
    sftp.on(unsupported, (reqId: number) => sftp.status(reqId, STATUS_CODE.OP_UNSUPPORTED));
  }
}
