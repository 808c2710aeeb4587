// Plain `pulumi` as an admin runs it after the README's one-time steps ("Running Pulumi"): the project's CLI and
// Node on PATH, PULUMI_CONFIG_PASSPHRASE_FILE, and nothing else of scripts/pulumi's (no PULUMI_BACKEND_URL, no
// COMFYUME_PULUMI_COMMAND, no policy pack, a PULUMI_HOME with no login). Shared by the engine tests that compare
// it with scripts/pulumi.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot, type PulumiRun } from "./pulumi-cli";

/** `.comfyume/tools.env` as written by `npm run setup`: where the project's CLI and Node live. */
export function toolPaths(): { pulumiBin: string; nodeBin: string } {
  const vars = Object.fromEntries(
    fs.readFileSync(path.join(repoRoot, ".comfyume/tools.env"), "utf8").split("\n")
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line)).filter((m): m is RegExpExecArray => m !== null).map((m) => [m[1], m[2]]),
  );
  return { pulumiBin: vars.COMFYUME_PULUMI_BIN, nodeBin: vars.COMFYUME_NODE_BIN };
}

/**
 * A clone of the repository as far as Pulumi sees it (its real Pulumi.yaml and policy pack, symlinked) with its own
 * empty stacks/. With `withTools`, also the setup's outputs (.comfyume, node_modules), so that scripts/pulumi run
 * from it takes this directory as the repository: its default backend and passphrase file are then the very ones
 * Pulumi.yaml and the README give plain `pulumi`.
 */
export function projectFixture(prefix: string, withTools = false): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const entries = ["index.ts", "infra", "components", "scripts", "policy", "Pulumi.yaml", "package.json", "tsconfig.json"];
  for (const entry of [...entries, ...(withTools ? [".comfyume", "node_modules"] : [])]) {
    fs.symlinkSync(path.join(repoRoot, entry), path.join(dir, entry));
  }
  fs.mkdirSync(path.join(dir, "stacks"));
  return dir;
}

/** An admin's shell after the README's one-time steps: no Pulumi variable but the passphrase file. */
export function plainShellEnv(dir: string, home: string, extra: NodeJS.ProcessEnv, passphrase = "plain-pulumi-test-passphrase"): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("PULUMI_") && !key.startsWith("COMFYUME_PULUMI") && key !== "COMFYUME_NO_POLICY") env[key] = value;
  }
  const { pulumiBin, nodeBin } = toolPaths();
  // What `npm run setup` leaves in a clone: the state directory and the passphrase file.
  fs.mkdirSync(path.join(dir, ".pulumi-state"), { recursive: true });
  const passphraseFile = path.join(dir, ".pulumi-passphrase");
  if (!fs.existsSync(passphraseFile)) fs.writeFileSync(passphraseFile, passphrase, { mode: 0o600 });
  return { ...env, ...extra, PATH: [pulumiBin, nodeBin, process.env.PATH].join(":"), PULUMI_HOME: home, PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile };
}

/** Runs `file` with `args` in `dir` (stdin given or empty), killed after `timeoutMs`. */
export function runIn(dir: string, env: NodeJS.ProcessEnv, file: string, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<PulumiRun> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(opts.stdin ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 300_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status: status ?? -1, stdout, stderr });
    });
  });
}

/** The bare `pulumi` binary, found on PATH as an admin's shell would, in `dir`. */
export function plainPulumi(dir: string, env: NodeJS.ProcessEnv, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<PulumiRun> {
  return runIn(dir, env, "pulumi", [...args, "--non-interactive"], opts);
}
