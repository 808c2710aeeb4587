// Test helpers for the local cloud: a Verda client against its simulator, and a real OpenSSH
// client that pins the simulated host's key through a known_hosts file.
import { runCollected } from "../../sim/local-cloud/collect";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { LocalCloud } from "../../sim/local-cloud";
import { VerdaClient } from "../../infra/verda/client";

export function verdaClient(cloud: LocalCloud): VerdaClient {
  return new VerdaClient({ clientId: cloud.env.VERDA_CLIENT_ID!, clientSecret: cloud.env.VERDA_CLIENT_SECRET!, baseUrl: cloud.env.VERDA_BASE_URL });
}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` on host:port with OpenSSH, accepting only `hostKey` (StrictHostKeyChecking=yes). */
export function ssh(cloud: LocalCloud, target: { host: string; port: number; hostKey: string }, command: string, stdin = ""): Promise<SshResult> {
  const dir = mkdtempSync(path.join(tmpdir(), "comfyume-known-hosts-"));
  const knownHosts = path.join(dir, "known_hosts");
  writeFileSync(knownHosts, `[${target.host}]:${target.port} ${target.hostKey}\n`);
  const args = [
    "-F", "/dev/null", "-i", cloud.env.COMFYUME_SIM_ADMIN_KEY_FILE!, "-p", String(target.port),
    "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", `root@${target.host}`, command,
  ];
  return runCollected("ssh", args, { stdin, timeoutMs: 60_000, timeoutMessage: `ssh ${command} timed out` }).finally(() =>
    rmSync(dir, { recursive: true, force: true }),
  );
}
