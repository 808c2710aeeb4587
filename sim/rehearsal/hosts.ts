// Commands on the simulated hosts over real SSH (OpenSSH client, host keys pinned), the way an
// admin would reach them; each command runs in the host's own namespace, like the Pulumi hooks'.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface SshHost {
  host: string;
  port: number;
  hostKey: string;
}

// Asynchronous on purpose: the simulated hosts' SSH servers run in this very process.
export function sshRun(dir: string, keyFile: string, target: SshHost, command: string, stdin = ""): Promise<string> {
  const knownHosts = path.join(dir, `known_hosts-${target.host}-${target.port}`);
  fs.writeFileSync(knownHosts, `[${target.host}]:${target.port} ${target.hostKey}\n`);
  const child = spawn(
    "ssh",
    ["-i", keyFile, "-p", String(target.port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes",
      "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", `root@${target.host}`, command],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  child.stdin.end(stdin);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGTERM"), 60_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`ssh ${target.host}:${target.port} '${command.slice(0, 80)}' failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}
