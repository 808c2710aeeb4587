// One simulated host (mello or an instance): a Machine (machine.ts) booted like a fresh cloud VM —
// its own SSH host keys (ssh-keygen -A, as cloud-init does), root's authorized_keys, the package
// mirror in its apt sources, the stand-in shims in /usr/local/sbin — then the image's own OpenSSH
// sshd on <ip>:<port>, configured like Ubuntu's, plus whatever service stand-ins it carries.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import { Machine, type ExecResult, type HostDirs } from "./machine";
import type { Closable } from "./stand-ins";

export type { HostDirs } from "./machine";
export const SHIMS_DIR = path.join(__dirname, "shims");

export interface SimHost extends HostDirs {
  host: string;
  port: number;
  /** authorized_keys form ("ssh-ed25519 AAAA...") of the ed25519 key sshd presents. */
  hostKey: string;
  /** Every host key sshd presents, authorized_keys form: ed25519, ecdsa, rsa (in that order). */
  hostKeys: string[];
  machine: Machine;
  /** Runs a command on the machine as root (login-like environment). */
  exec(command: string, timeoutMs?: number): Promise<ExecResult>;
  /** Fault seam: sshd and every session (and its commands) are killed; new dials are refused. */
  stopSsh(): Promise<void>;
  /** Fault seam: sshd starts again with the same address, port and host keys. */
  startSsh(): Promise<void>;
  close(): Promise<void>;
}

/** What every machine of this cloud shares at first boot. */
export interface MachineImage {
  volumesDir: string;
  /** `deb [trusted=yes] http://<mirror>/ ./`, written to /etc/apt/sources.list.d/comfyume-sim-mirror.list. */
  mirrorSourcesLine: string;
  /** Packages this image carries beyond the stock rootfs (installed from the mirror at first boot). */
  packages: string[];
}

function sshdConfig(ip: string, port: number): string {
  return [
    "# Written by the local cloud: Ubuntu's defaults, listening on this machine's address only.",
    "Include /etc/ssh/sshd_config.d/*.conf",
    `ListenAddress ${ip}:${port}`,
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM yes",
    "X11Forwarding yes",
    "PrintMotd no",
    "AcceptEnv LANG LC_*",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "",
  ].join("\n");
}

/** A fresh machine: started, with its own host keys, the mirror's apt source and the stand-ins. */
export async function prepareHost(dir: string, hostname: string, ip: string, image: MachineImage): Promise<Machine> {
  const m = await Machine.start(dir, hostname, image.volumesDir);
  try {
    const root = m.dirs.root;
    writeFileSync(path.join(m.dirs.state, "host-ip"), `${ip}\n`);
    for (const f of ["calls.log", "exports", "devices"]) writeFileSync(path.join(m.dirs.state, f), "");
    // A cloud image boots with these running (tailscale preinstalled, as restore-instance assumes).
    mkdirSync(path.join(m.dirs.state, "units"), { recursive: true });
    for (const unit of ["ssh", "docker", "tailscaled", "cron"]) writeFileSync(path.join(m.dirs.state, "units", unit), "");
    writeFileSync(path.join(root, "etc/fstab"), "# /etc/fstab: static file system information (local cloud image)\nLABEL=cloudimg-rootfs / ext4 defaults 0 1\n");
    writeFileSync(path.join(root, "etc/apt/sources.list.d/comfyume-sim-mirror.list"), `${image.mirrorSourcesLine}\n`);
    // No init system runs services here: packages must not start daemons (rpcbind would bind this computer's port 111).
    writeFileSync(path.join(root, "usr/sbin/policy-rc.d"), "#!/bin/sh\n# local cloud: no init system on this machine; services are not started by packages\nexit 101\n", { mode: 0o755 });
    for (const shim of readdirSync(SHIMS_DIR)) copyFileSync(path.join(SHIMS_DIR, shim), path.join(root, "usr/local/sbin", shim));
    for (const shim of readdirSync(SHIMS_DIR)) chmodSync(path.join(root, "usr/local/sbin", shim), 0o755);
    if (image.packages.length > 0) {
      // A custom image: the packages are there before anything of the project's runs.
      const install = `apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends ${image.packages.join(" ")}`;
      const r = await m.exec(install, { timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`image packages (${image.packages.join(", ")}) failed to install on ${hostname}: ${r.out}`);
    }
    const keygen = await m.exec("ssh-keygen -A", { timeoutMs: 60_000 });
    if (keygen.code !== 0) throw new Error(`ssh-keygen -A failed on ${hostname}: ${keygen.out}`);
    return m;
  } catch (err) {
    await m.close();
    throw err;
  }
}

/** root's authorized_keys, as the cloud installs the instance's registered SSH keys. */
export function authorizeKeys(m: Machine, keys: string[]): void {
  const dir = path.join(m.dirs.root, "root/.ssh");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writeFileSync(path.join(dir, "authorized_keys"), keys.map((k) => `${k.trim()}\n`).join(""), { mode: 0o600 });
}

/** The ed25519 key sshd will present: whatever /etc/ssh holds now (a restored identity, or the machine's own). */
export function installedHostKey(m: Machine, kind: "ed25519" | "ecdsa" | "rsa" = "ed25519"): string {
  return readFileSync(path.join(m.dirs.root, `etc/ssh/ssh_host_${kind}_key.pub`), "utf8").split(" ").slice(0, 2).join(" ");
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once("data", (d: Buffer) => {
      s.destroy();
      resolve(d.toString().startsWith("SSH-"));
    });
    s.once("error", () => resolve(false));
  });
}

async function launchSshd(m: Machine, ip: string, port: number): Promise<ChildProcess> {
  const root = m.dirs.root;
  writeFileSync(path.join(root, "etc/ssh/sshd_config"), sshdConfig(ip, port));
  mkdirSync(path.join(root, "run/sshd"), { recursive: true, mode: 0o755 });
  const log = openSync(path.join(m.dirs.state, "sshd.log"), "a");
  const entry = m.enter(["/usr/sbin/sshd", "-D", "-e"], { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" });
  const child = spawn(entry.argv[0]!, entry.argv.slice(1), { env: entry.env, detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  const deadline = Date.now() + 15_000;
  while (!(await answers(ip, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      const tail = readFileSync(path.join(m.dirs.state, "sshd.log"), "utf8").split("\n").slice(-5).join("\n");
      throw new Error(`sshd on ${m.hostname} (${ip}:${port}) did not start: ${tail}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

/** sshd comes up on <ip>:<port> (after first boot); the host is then reachable. */
export async function startSimHost(m: Machine, ip: string, port: number, extras: Closable[] = []): Promise<SimHost> {
  let sshd: ChildProcess | undefined;
  try {
    sshd = await launchSshd(m, ip, port);
  } catch (err) {
    await Promise.all(extras.map((e) => e.close()));
    await m.close();
    throw err;
  }
  const host: SimHost = {
    ...m.dirs,
    host: ip,
    port,
    hostKey: installedHostKey(m),
    hostKeys: (["ed25519", "ecdsa", "rsa"] as const).map((kind) => installedHostKey(m, kind)),
    machine: m,
    exec: (command, timeoutMs = 120_000) => m.exec(command, { timeoutMs }),
    async stopSsh() {
      await m.killAllButInit();
      sshd = undefined;
    },
    async startSsh() {
      if (sshd && sshd.exitCode === null) return;
      sshd = await launchSshd(m, ip, port);
    },
    async close() {
      await Promise.all(extras.map((e) => e.close()));
      await m.close();
    },
  };
  return host;
}
