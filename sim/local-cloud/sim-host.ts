// One simulated machine: its directories, an SSH host on its own loopback address whose commands
// run in the host's namespace, and whatever service stand-ins it carries.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { utils } from "ssh2";
import { generateKeyPair, publicKeyLine, startSshHost, type SshHost } from "../../test/support/ssh-host";
import { hostShellEnv, makeHostDirs, type HostDirs } from "./host-env";
import { hostExecWrapper } from "./namespace";
import { writeFile } from "./sample-data";
import type { Closable } from "./stand-ins";

export interface SimHost extends HostDirs {
  host: string;
  port: number;
  /** authorized_keys form of the key sshd presents. */
  hostKey: string;
  ssh: SshHost;
  env: Record<string, string>;
  /** Fault seam: sshd stops (open sessions and their commands are killed; new dials are refused). */
  stopSsh(): Promise<void>;
  /** Fault seam: sshd listens again on the same address, port and host key. */
  startSsh(): Promise<void>;
  close(): Promise<void>;
}

/** A fresh cloud image: its own SSH host key in /etc/ssh, like any new VM. */
export function prepareHost(dir: string, label: string): HostDirs {
  const d = makeHostDirs(dir);
  const key = generateKeyPair();
  writeFile(path.join(d.root, "etc/ssh/ssh_host_ed25519_key"), key.privateKey, 0o600);
  writeFile(path.join(d.root, "etc/ssh/ssh_host_ed25519_key.pub"), `${key.publicKey} root@${label}\n`, 0o644);
  return d;
}

/** The ed25519 host key sshd would load from the host's /etc/ssh. */
export function installedHostKey(d: HostDirs): string {
  const text = readFileSync(path.join(d.root, "etc/ssh/ssh_host_ed25519_key"), "utf8");
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error) throw new Error(`unreadable /etc/ssh/ssh_host_ed25519_key on the simulated host: ${parsed.message}`);
  return text;
}

/** Runs a command in the host's namespace (e.g. the first-boot startup script); resolves with its exit code. */
export function runOnHost(d: HostDirs, ip: string, command: string, timeoutMs: number, logFile: string): Promise<number> {
  return new Promise((resolve) => {
    const argv = [...hostExecWrapper(d.root), command];
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...hostShellEnv(d, ip), HOME: d.root }, cwd: d.root, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      out += `\n(local cloud: killed after ${timeoutMs} ms)\n`;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      writeFile(logFile, out);
      resolve(code ?? -1);
    });
  });
}

export async function startSimHost(
  d: HostDirs,
  ip: string,
  port: number,
  authorizedKeys: string[],
  extras: Closable[] = [],
): Promise<SimHost> {
  const hostPrivateKey = installedHostKey(d);
  const env = hostShellEnv(d, ip);
  const listen = (onPort: number) =>
    startSshHost({ authorizedKey: authorizedKeys, hostKey: hostPrivateKey, port: onPort, bindAddress: ip, root: d.root, shellEnv: env, execWrapper: hostExecWrapper(d.root) });
  let ssh: SshHost;
  try {
    ssh = await listen(port);
  } catch (err) {
    await Promise.all(extras.map((e) => e.close()));
    throw err;
  }
  let running = true;
  const host: SimHost = {
    ...d,
    host: ip,
    port: ssh.port,
    hostKey: publicKeyLine(hostPrivateKey),
    ssh,
    env,
    async stopSsh() {
      if (!running) return;
      running = false;
      await ssh.close();
    },
    async startSsh() {
      if (running) return;
      ssh = await listen(host.port);
      host.ssh = ssh;
      running = true;
    },
    async close() {
      await Promise.all([running ? ssh.close() : Promise.resolve(), ...extras.map((e) => e.close())]);
      running = false;
    },
  };
  return host;
}
