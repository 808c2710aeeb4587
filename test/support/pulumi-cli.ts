// Runs the project's Pulumi CLI (scripts/pulumi) for engine tests, with a throwaway
// file backend and passphrase so tests never touch the developer's stacks.
import { spawnSync } from "node:child_process";
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
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
