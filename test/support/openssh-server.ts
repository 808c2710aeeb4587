// A REAL OpenSSH sshd for tests, on a loopback address of the test's own, with its own ed25519, ECDSA and
// RSA host keys and authorized_keys, configured like Ubuntu's defaults (prohibit-password root login, no
// passwords, sftp subsystem, AcceptEnv LANG LC_*). Two ways to run it:
// - on this machine (`/usr/sbin/sshd`, installed by scripts/setup/system-packages.sh, never as a service):
//   logins as root see this machine's files;
// - with `rootfs` (the simulated cloud's stock image, COMFYUME_SIM_ROOTFS): sshd runs chrooted in an overlay of
//   the image, in its own mount and pid namespaces, so a test can add users, sudoers rules, /etc/environment
//   or a ~/.bashrc with `setup` without touching this machine's /etc. Everything goes when `close()` runs.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";

export type HostKeyType = "ed25519" | "ecdsa" | "rsa";
export const HOST_KEY_TYPES: readonly HostKeyType[] = ["ed25519", "ecdsa", "rsa"];

export interface OpenSshServerOptions {
  /** Loopback address to listen on, distinct per test file (e.g. 127.97.0.5). */
  address: string;
  /** Default: a free port on `address`. */
  port?: number;
  /** user name → authorized_keys lines. */
  authorizedKeys: Record<string, string[]>;
  /** Run chrooted in an overlay of this image root instead of this machine's sshd. */
  rootfs?: string;
  /** Bash script run as root inside the image before sshd starts (rootfs only): useradd, sudoers, dotfiles. */
  setup?: string;
  /** sshd's LogLevel (default INFO); VERBOSE logs every session ("Starting session: command …", "subsystem 'sftp'"). */
  logLevel?: "INFO" | "VERBOSE";
}

export interface OpenSshServer {
  host: string;
  port: number;
  /** The server's public host keys, authorized_keys format ("ecdsa-sha2-nistp256 AAAA..."). */
  hostKeys: Record<HostKeyType, string>;
  /** With `rootfs`: the overlay's upper directory (files the machine wrote, seen from outside). */
  upperDir?: string;
  /** Adds an authorized_keys line for `user` while the server runs (this machine's sshd only). */
  authorize(user: string, line: string): void;
  /** sshd's own log (-e): connections, authentication results. */
  log(): string;
  close(): Promise<void>;
}

/** True when this machine can run the helper (sshd installed by `npm run setup`, and we are root). */
export function openSshAvailable(): boolean {
  return existsSync("/usr/sbin/sshd") && existsSync("/usr/bin/ssh-keygen") && process.getuid?.() === 0;
}

/** A fresh key pair from ssh-keygen: OpenSSH private key text and authorized_keys public line. */
export function sshKeygen(type: HostKeyType, dir: string, name: string): { privateKey: string; publicKey: string; file: string } {
  const file = path.join(dir, name);
  const bits = type === "rsa" ? ["-b", "3072"] : type === "ecdsa" ? ["-b", "256"] : [];
  execFileSync("/usr/bin/ssh-keygen", ["-q", "-t", type, ...bits, "-N", "", "-C", "", "-f", file], { stdio: "ignore" });
  const publicKey = readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  return { privateKey: readFileSync(file, "utf8"), publicKey, file };
}

async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, address, resolve));
  const bound = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof bound !== "object" || !bound) throw new Error(`no free port on ${address}`);
  return bound.port;
}

/** Ubuntu-like sshd settings; `base` is the config directory as sshd sees it. */
function sshdConfig(base: string, address: string, port: number, usePam: boolean, logLevel = "INFO"): string {
  return [
    `LogLevel ${logLevel}`,
    `ListenAddress ${address}:${port}`,
    ...HOST_KEY_TYPES.map((type) => `HostKey ${base}/ssh_host_${type}_key`),
    `PidFile ${base}/sshd.pid`,
    `AuthorizedKeysFile ${base}/authorized_keys/%u`,
    "StrictModes no",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    `UsePAM ${usePam ? "yes" : "no"}`,
    "X11Forwarding no",
    "PrintMotd no",
    "AcceptEnv LANG LC_*",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "",
  ].join("\n");
}

/** Host keys, authorized_keys and sshd_config into `dir`; returns the public host keys. */
function writeServerFiles(dir: string, base: string, options: OpenSshServerOptions, port: number, usePam: boolean) {
  mkdirSync(path.join(dir, "authorized_keys"), { recursive: true });
  const hostKeys = {} as Record<HostKeyType, string>;
  for (const type of HOST_KEY_TYPES) hostKeys[type] = sshKeygen(type, dir, `ssh_host_${type}_key`).publicKey;
  for (const [user, lines] of Object.entries(options.authorizedKeys)) {
    writeFileSync(path.join(dir, "authorized_keys", user), lines.join("\n") + "\n", { mode: 0o644 });
  }
  writeFileSync(path.join(dir, "sshd_config"), sshdConfig(base, options.address, port, usePam, options.logLevel));
  return hostKeys;
}

export async function startOpenSshServer(options: OpenSshServerOptions): Promise<OpenSshServer> {
  const work = mkdtempSync(path.join(tmpdir(), "openssh-server-"));
  const port = options.port ?? (await freePort(options.address));
  let child: ChildProcess;
  let hostKeys: Record<HostKeyType, string>;
  let upperDir: string | undefined;
  if (options.rootfs) {
    upperDir = path.join(work, "upper");
    const base = "/etc/ssh/comfyume-test";
    hostKeys = writeServerFiles(path.join(upperDir, base), base, options, port, true);
    writeFileSync(path.join(work, "setup.sh"), options.setup ?? "");
    child = spawn("/usr/bin/unshare", ["--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
      "/bin/bash", "-c", IMAGE_BOOT, "image-boot", options.rootfs, work, `${base}/sshd_config`], { stdio: ["ignore", "pipe", "pipe"] });
  } else {
    const base = path.join(work, "etc");
    hostKeys = writeServerFiles(base, base, options, port, false);
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
    chmodSync("/run/sshd", 0o755);
    child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(base, "sshd_config")], { stdio: ["ignore", "pipe", "pipe"] });
  }
  const output: string[] = [];
  child.stdout!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitForListening(() => output.join(""), exited, options.address, port);
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
  return {
    host: options.address, port, hostKeys, upperDir,
    authorize(user, line) {
      if (options.rootfs) throw new Error("authorize() is for this machine's sshd; pass rootfs servers their keys up front");
      appendFileSync(path.join(work, "etc", "authorized_keys", user), `${line}\n`);
    },
    log: () => output.join(""),
    async close() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(killer);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * Runs in fresh mount and pid namespaces: overlay of the image, /dev bound, /proc of the new pid namespace,
 * the test's setup script, then sshd in the foreground. Killing unshare (--kill-child) ends every process.
 */
const IMAGE_BOOT = `set -euo pipefail
rootfs=$1 work=$2 config=$3
machine="$work/machine"
mkdir -p "$work/upper" "$work/overlay-work" "$machine"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/overlay-work" "$machine"
mount --rbind /dev "$machine/dev"
mount -t proc proc "$machine/proc"
mount -t tmpfs tmpfs "$machine/run"
mkdir -p "$machine/run/sshd"
printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n' "$(hostname)" > "$machine/etc/hosts"
cp "$work/setup.sh" "$machine/tmp/comfyume-test-setup.sh"
chroot "$machine" /bin/bash -euo pipefail /tmp/comfyume-test-setup.sh
rm -f "$machine/tmp/comfyume-test-setup.sh"
exec chroot "$machine" /usr/sbin/sshd -D -e -f "$config"
`;

async function waitForListening(log: () => string, exited: Promise<void>, address: string, port: number): Promise<void> {
  let gone = false;
  void exited.then(() => { gone = true; });
  const deadline = Date.now() + 30_000;
  while (!/Server listening on/.test(log())) {
    if (gone) throw new Error(`sshd on ${address}:${port} exited before listening:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not start within 30 s:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
