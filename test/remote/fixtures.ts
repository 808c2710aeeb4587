// Shared pieces for the remote-command tests: one client key pair and a loopback host per test file. The user is
// root: any other login user runs commands through `sudo -n`, which the in-process ssh2 host does not have
// (test/remote/openssh-image.test.ts covers that against a real sshd).
import type { SshConnection } from "../../infra/remote/connection";
import { generateKeyPair, type SshHost, startSshHost, type SshHostOptions } from "../support/ssh-host";

export const clientKey = generateKeyPair();

export function startHost(options: Partial<SshHostOptions> = {}): Promise<SshHost> {
  return startSshHost({ authorizedKey: clientKey.publicKey, ...options });
}

export function connectionTo(host: SshHost, extra: Partial<SshConnection> = {}): SshConnection {
  return { host: host.host, port: host.port, user: "root", privateKey: clientKey.privateKey, dialErrorLimit: 2, ...extra };
}

/** Base64 body of the client private key: must never show up in errors, outputs or serialized code. */
export function privateKeyBody(): string {
  return clientKey.privateKey.split("\n").filter((line) => line && !line.startsWith("-----")).join("");
}

/** True once the process is gone (or only a zombie waiting to be reaped). */
export async function processGone(pid: number, withinMs = 3000): Promise<boolean> {
  const { readFileSync } = await import("node:fs");
  const deadline = Date.now() + withinMs;
  for (;;) {
    let state: string | undefined;
    try {
      state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\)\s+/, "")[0];
    } catch {
      return true;
    }
    if (state === "Z") return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
