// No cron daemon runs on simulated machines; `runCronJobs` does what cron would do at the next tick:
// every job line of the /etc/cron.d files installed on the machine since the image (its overlay's
// upper layer holds them; the image's own housekeeping, e.g. e2scrub_all, is left to its schedule)
// runs once, now, on the machine, as root, with /bin/sh and cron's environment (PATH=/usr/bin:/bin
// unless the file sets variables).
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { SimHost } from "./sim-host";

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

/** The VAR=value lines of a cron.d file (cron sets them for the file's jobs). */
export function cronVariables(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const l of text.split("\n").map((x) => x.trim())) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(l);
    if (m) vars[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

export async function runCronJobs(h: SimHost, timeoutMs: number): Promise<CronRun[]> {
  const dir = path.join(h.root, "etc/cron.d");
  if (!existsSync(dir)) return [];
  const runs: CronRun[] = [];
  // cron ignores names with dots (backups such as *.bak), and so do we.
  const installed = (f: string) => existsSync(path.join(h.dir, "upper/etc/cron.d", f));
  for (const file of readdirSync(dir).filter((f) => !f.includes(".") && installed(f)).sort()) {
    const text = readFileSync(path.join(dir, file), "utf8");
    const env = { PATH: "/usr/bin:/bin", HOME: "/root", LOGNAME: "root", SHELL: "/bin/sh", ...cronVariables(text) };
    for (const command of cronJobs(text)) {
      const r = await h.machine.exec(command, { timeoutMs, env, shell: env.SHELL });
      writeFileSync(path.join(h.state, `cron-${file}.log`), r.out);
      runs.push({ file, command, code: r.code });
    }
  }
  return runs;
}
