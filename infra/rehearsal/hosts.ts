// Commands on the simulated hosts over real SSH (OpenSSH client, host keys pinned), the way an
// admin would reach them; each command runs in the host's own namespace, like the Pulumi hooks'.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface SshHost {
  host: string;
  port: number;
  hostKey: string;
}

export function sshRun(dir: string, keyFile: string, target: SshHost, command: string, stdin = ""): string {
  const knownHosts = path.join(dir, `known_hosts-${target.host}-${target.port}`);
  fs.writeFileSync(knownHosts, `[${target.host}]:${target.port} ${target.hostKey}\n`);
  const result = spawnSync(
    "ssh",
    ["-i", keyFile, "-p", String(target.port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes",
      "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", `root@${target.host}`, command],
    { input: stdin, encoding: "utf8", timeout: 60_000 },
  );
  if (result.status !== 0) {
    throw new Error(`ssh ${target.host}:${target.port} '${command}' failed (exit ${result.status}): ${result.stderr}`);
  }
  return result.stdout;
}
