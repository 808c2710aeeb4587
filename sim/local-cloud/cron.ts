// No cron daemon runs on simulated hosts; `runCronJobs` does what cron would do at the next tick:
// every job line of the host's /etc/cron.d files runs once, now, in the host's namespace.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { HostDirs } from "./host-env";
import { runOnHost } from "./sim-host";

export interface CronRun {
  file: string;
  command: string;
  code: number;
}

/** Job commands of a cron.d file: "<5 schedule fields> <user> <command>", skipping comments and VAR= lines. */
export function cronJobs(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(l))
    .map((l) => l.split(/\s+/).slice(6).join(" "))
    .filter((c) => c !== "");
}

export async function runCronJobs(d: HostDirs, ip: string, timeoutMs: number): Promise<CronRun[]> {
  const dir = path.join(d.root, "etc/cron.d");
  if (!existsSync(dir)) return [];
  const runs: CronRun[] = [];
  // cron ignores names with dots (backups such as *.bak), and so do we.
  for (const file of readdirSync(dir).filter((f) => !f.includes(".")).sort()) {
    for (const command of cronJobs(readFileSync(path.join(dir, file), "utf8"))) {
      const code = await runOnHost(d, ip, command, timeoutMs, path.join(d.state, `cron-${file}.log`));
      runs.push({ file, command, code });
    }
  }
  return runs;
}
