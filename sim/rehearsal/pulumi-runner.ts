// Runs scripts/pulumi against the local cloud's project with progress on the terminal and the full
// output in a log file per step (the output of `up` with secrets stays out of the terminal). Every value
// given on stdin to `config set --secret` is scrubbed from later logs and results: the rehearsal's
// artefacts never hold a secret in clear, whatever a command prints.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "../..");

export interface PulumiRunner {
  run(label: string, args: string[], opts?: { stdin?: string; timeoutMs?: number; allowFailure?: boolean; env?: Record<string, string> }): Promise<PulumiResult>;
}

export interface PulumiResult {
  code: number;
  stdout: string;
  logFile: string;
}

export function pulumiRunner(projectDir: string, env: Record<string, string>, logDir: string, say: (line: string) => void): PulumiRunner {
  fs.mkdirSync(logDir, { recursive: true });
  let seq = 0;
  const secrets: string[] = [];
  return {
    run(label, args, opts = {}) {
      seq += 1;
      const logFile = path.join(logDir, `${String(seq).padStart(2, "0")}-${label.replace(/[^A-Za-z0-9]+/g, "-")}.log`);
      const log = fs.createWriteStream(logFile);
      log.write(`$ pulumi ${args.join(" ")}\n`);
      if (args[0] === "config" && args.includes("--secret") && opts.stdin) secrets.push(...secretForms(opts.stdin));
      const scrub = (text: string) => scrubSecrets(text, secrets);
      let pending = ""; // a secret split across two chunks is scrubbed once its line is complete
      const child = spawn(path.join(REPO_ROOT, "scripts/pulumi"), ["-C", projectDir, ...args, "--non-interactive"], {
        env: { ...process.env, ...env, ...opts.env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      child.stdin.end(opts.stdin ?? "");
      let stdout = "";
      let lastLine = "";
      const take = (chunk: Buffer, isOut: boolean) => {
        const text = chunk.toString();
        if (isOut) stdout += text;
        pending += text;
        const lineEnd = pending.lastIndexOf("\n") + 1;
        // Scrub whole lines only: a secret split across two chunks is whole here.
        const complete = scrub(pending.slice(0, lineEnd));
        log.write(complete);
        pending = pending.slice(lineEnd);
        const lines = complete.split("\n").map((l) => l.trim()).filter(Boolean);
        if (lines.length) lastLine = lines[lines.length - 1];
      };
      child.stdout.on("data", (c: Buffer) => take(c, true));
      child.stderr.on("data", (c: Buffer) => take(c, false));
      const started = Date.now();
      const heartbeat = setInterval(() => say(`    … ${label}: ${Math.round((Date.now() - started) / 1000)} s — ${lastLine.slice(0, 100)}`), 15_000);
      const timeout = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 600_000);
      return new Promise<PulumiResult>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => {
          clearInterval(heartbeat);
          clearTimeout(timeout);
          log.end(scrub(pending));
          const result = { code: code ?? -1, stdout: scrub(stdout), logFile };
          if (result.code !== 0 && !opts.allowFailure) {
            reject(new Error(`pulumi ${args.join(" ")} failed (exit ${result.code}); full output in ${logFile}`));
          } else resolve(result);
        });
      });
    },
  };
}

/** A secret as commands may print it: whole, JSON-escaped, and each long line of a multi-line value (a PEM key). */
export function secretForms(value: string): string[] {
  const whole = value.replace(/\n$/, "");
  const lines = whole.split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----"));
  return [...new Set([whole, JSON.stringify(whole).slice(1, -1), ...lines])].filter((form) => form.length >= 8);
}

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join("[secret]"), text);
}
