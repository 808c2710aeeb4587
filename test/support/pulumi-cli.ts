// Runs the project's Pulumi CLI (scripts/pulumi) for engine tests, with a throwaway
// file backend and passphrase so tests never touch the developer's stacks.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const repoRoot = path.resolve(__dirname, "../..");
const toolsEnv = path.join(repoRoot, ".comfyume/tools.env");

/** True when `npm run setup` has provided a Pulumi CLI. In CI its absence is a failure, not a skip. */
export function pulumiToolchainReady(): boolean {
  return fs.existsSync(toolsEnv);
}

export interface PulumiRun {
  status: number;
  stdout: string;
  stderr: string;
}

export interface PulumiSandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { stdin?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): PulumiRun;
  /**
   * Same, without blocking the event loop: needed whenever a server the CLI talks to (the Verda
   * simulator, an SSH host) lives in the test's own process.
   */
  runAsync(args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<PulumiRun>;
  cleanup(): void;
}

/** A temp copy of a fixture project with its own state directory and passphrase. */
export function pulumiSandbox(fixtureDir: string): PulumiSandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "comfyume-engine-"));
  fs.cpSync(fixtureDir, dir, { recursive: true });
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
  fs.mkdirSync(path.join(dir, ".state"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${path.join(dir, ".state")}`,
    PULUMI_CONFIG_PASSPHRASE: "engine-test-passphrase",
    PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi"),
  };
  return {
    dir,
    env,
    run(args, opts = {}) {
      const result = spawnSync(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"], {
        cwd: dir,
        env: { ...env, ...opts.env },
        input: opts.stdin ?? "",
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
    },
    runAsync(args, opts = {}) {
      return new Promise((resolve) => {
        const child = spawn(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"], {
          cwd: dir,
          env: { ...env, ...opts.env },
          stdio: ["ignore", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
        child.on("close", (status) => {
          clearTimeout(timer);
          resolve({ status: status ?? -1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
        });
      });
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
