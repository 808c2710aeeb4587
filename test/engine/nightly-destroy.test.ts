// The nightly destroy must never be blocked by the program. A day stack's state (a worker and its
// backup-before-delete, as RemoteCommands on a loopback host recording the order of their deletes) is destroyed
// with the REAL program in the project directory while its configuration is broken: invalid config, or a valid
// config whose month StackReference is missing and whose money gate and live SFS read cannot reach Verda.
// `pulumi destroy --run-program` and plain `pulumi destroy` are run with the bare CLI (not scripts/pulumi, so
// no COMFYUME_PULUMI_COMMAND): both must complete and run every delete command, backup first.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiRun, type PulumiSandbox } from "../support/pulumi-cli";
import type { SshHost } from "../support/ssh-host";
import { clientKey, startHost } from "../remote/fixtures";
import { SECRETS } from "../support/fixtures";
import { useTsxMain } from "../support/tsx-entry";

const STACK = "testing-day";

/** The repository's program with its own index.ts: NIGHTLY_SEED=1 declares day-like state, otherwise the real program runs. */
function projectFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "comfyume-nightly-"));
  for (const entry of ["infra", "components", "scripts", "package.json", "tsconfig.json"]) {
    fs.symlinkSync(path.join(repoRoot, entry), path.join(dir, entry));
  }
  fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  useTsxMain(path.join(dir, "Pulumi.yaml")); // its own index.ts
  fs.mkdirSync(path.join(dir, "stacks"));
  fs.writeFileSync(
    path.join(dir, "index.ts"),
    `import * as pulumi from "@pulumi/pulumi";
import { buildProgram } from "./infra/program";
import { RemoteCommand } from "./infra/remote";

function seed(): Record<string, pulumi.Output<unknown>> {
  const connection = {
    host: "127.0.0.1", port: Number(process.env.NIGHTLY_PORT), user: "root",
    privateKey: pulumi.secret(String(process.env.NIGHTLY_KEY)), hostKey: String(process.env.NIGHTLY_HOST_KEY),
  };
  const record = (what: string) => \`echo \${what} >> "$SSH_HOST_ROOT/deletes"\`;
  const instance = new RemoteCommand("worker-instance", { connection, create: "true", delete: record("instance") });
  const backup = new RemoteCommand("worker-backup-before-delete", { connection, create: "true", delete: record("backup") }, { dependsOn: [instance] });
  return { seeded: backup.stdout };
}

export = process.env.NIGHTLY_SEED === "1" ? seed() : buildProgram();
`,
  );
  return dir;
}

/** The bare CLI, set up like scripts/pulumi but without its COMFYUME_PULUMI_COMMAND. */
function bareCli(sandbox: PulumiSandbox, args: string[], env: NodeJS.ProcessEnv): Promise<PulumiRun> {
  const tools = Object.fromEntries(
    fs.readFileSync(path.join(repoRoot, ".comfyume/tools.env"), "utf8").split("\n")
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line)).filter((m): m is RegExpExecArray => m !== null).map((m) => [m[1], m[2]]),
  );
  const childEnv: NodeJS.ProcessEnv = {
    ...sandbox.env,
    ...env,
    PATH: [tools.COMFYUME_NODE_BIN, tools.COMFYUME_PULUMI_BIN, path.join(repoRoot, "node_modules/.bin"), process.env.PATH].join(":"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
  delete childEnv.COMFYUME_PULUMI_COMMAND;
  return new Promise((resolve) => {
    const child = spawn(path.join(tools.COMFYUME_PULUMI_BIN, "pulumi"), [...args, "--non-interactive"], { cwd: sandbox.dir, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status: status ?? -1, stdout, stderr });
    });
  });
}

describe.runIf(pulumiToolchainReady())("nightly destroy is never blocked by the program", () => {
  let host: SshHost;
  let fixture: string;
  let sandbox: PulumiSandbox;
  let env: NodeJS.ProcessEnv;
  const ok = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const result = await sandbox.runAsync([...args, "--stack", STACK], { env: { ...env, ...extra }, timeoutMs: 180_000 });
    if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  const deletesFile = () => path.join(host.root, "deletes");
  const seed = async () => {
    fs.rmSync(deletesFile(), { force: true });
    await ok(["up", "--yes", "--skip-preview"], { NIGHTLY_SEED: "1" });
  };
  const destroyBare = async (args: string[]) => {
    const result = await bareCli(sandbox, ["destroy", "--yes", "--skip-preview", "--stack", STACK, ...args], env);
    return { ...result, output: `${result.stdout}\n${result.stderr}` };
  };
  const resourcesLeft = async () => JSON.parse((await ok(["stack", "export"])).stdout).deployment.resources ?? [];

  beforeAll(async () => {
    host = await startHost();
    fixture = projectFixture();
    sandbox = pulumiSandbox(fixture);
    env = {
      COMFYUME_NO_POLICY: "1",
      NIGHTLY_PORT: String(host.port),
      NIGHTLY_KEY: clientKey.privateKey,
      NIGHTLY_HOST_KEY: host.hostKey,
    };
    for (const key of Object.keys(sandbox.env)) if (key.startsWith("VERDA_")) env[key] = undefined;
    await ok(["stack", "init"]);
  }, 60_000);
  afterAll(async () => {
    sandbox?.cleanup();
    fs.rmSync(fixture, { recursive: true, force: true });
    await host?.close();
  });

  it("invalid config: destroy --run-program and plain destroy both run every delete, backup first", async () => {
    fs.writeFileSync(path.join(sandbox.dir, "stacks", `Pulumi.${STACK}.yaml`), `config:\n  comfyume:phase: ${STACK}\n  comfyume:gpu:\n    image: 42\n`);
    for (const flags of [["--run-program"], []]) {
      await seed();
      const result = await destroyBare(flags);
      expect(result.status, result.output).toBe(0);
      expect(fs.readFileSync(deletesFile(), "utf8")).toBe("backup\ninstance\n");
      expect(await resourcesLeft()).toEqual([]);
    }
  }, 300_000);

  it("valid config with a missing month StackReference, the money gate on and Verda unreachable", async () => {
    const values: Record<string, unknown> = {
      "comfyume:phase": STACK,
      "comfyume:stackRefs": { idle: "idle", month: "no-such-month" },
      "comfyume:verda": { liveSfsRead: true, moneyGate: true },
      "comfyume:gpu": { instanceType: "CPU.4V.16G", image: "ubuntu-24.04" },
      "comfyume:restore": { expectedTailscaleIp: "100.64.0.12", redisHost: "100.64.0.2" },
      "verda:clientId": "nightly-client",
      "verda:baseUrl": "http://127.0.0.1:9",
    };
    // YAML accepts JSON values: the stack file is written directly, secrets then go through the CLI.
    const yaml = Object.entries(values).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`).join("\n");
    fs.writeFileSync(path.join(sandbox.dir, "stacks", `Pulumi.${STACK}.yaml`), `config:\n${yaml}\n`);
    const secrets = { "verda:clientSecret": "nightly-secret", "comfyume:sshPrivateKey": SECRETS.sshPrivateKey, "comfyume:redisPassword": SECRETS.redisPassword, "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey };
    await ok(["config", "set-all", ...Object.entries(secrets).flatMap(([key, value]) => ["--secret", `${key}=${value}`])]);
    // Control: the same program refuses a preview (the gate and the reference are live outside a destroy).
    const refused = await sandbox.runAsync(["preview", "--stack", STACK], { env, timeoutMs: 180_000 });
    expect(refused.status).not.toBe(0);
    expect(`${refused.stdout}\n${refused.stderr}`).toMatch(/no-such-month/);

    await seed();
    const result = await destroyBare(["--run-program"]);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain("destroy: the program declares nothing");
    expect(fs.readFileSync(deletesFile(), "utf8")).toBe("backup\ninstance\n");
    expect(await resourcesLeft()).toEqual([]);
  }, 300_000);
});
