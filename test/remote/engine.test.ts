// RemoteFiles + RemoteCommand under the real Pulumi engine (CLI, language host, dynamic-provider host)
// against the in-process loopback SSH host: preview runs nothing, up uploads and runs, state holds secrets
// encrypted, destroy runs the delete command with the stdin from state.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";
import type { SshHost } from "../support/ssh-host";
import { clientKey, privateKeyBody, startHost } from "./fixtures";

const STDIN_SECRET = "engine-stdin-secret-7431";

describe.runIf(pulumiToolchainReady())("RemoteFiles and RemoteCommand under the real engine", () => {
  let host: SshHost;
  let sandbox: PulumiSandbox;
  let env: NodeJS.ProcessEnv;
  const ok = async (args: string[]) => {
    const result = await sandbox.runAsync(args, { env });
    if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
    return result;
  };

  beforeAll(async () => {
    host = await startHost();
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/engine"));
    env = {
      COMFYUME_REPO: repoRoot,
      REMOTE_E2E_ROOT: host.root,
      REMOTE_E2E_PORT: String(host.port),
      REMOTE_E2E_HOST_KEY: host.hostKey,
      REMOTE_E2E_PRIVATE_KEY: clientKey.privateKey,
      REMOTE_E2E_STDIN: STDIN_SECRET,
    };
    await ok(["stack", "init", "dev"]);
  }, 60_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await host?.close();
  });

  it("uploads, runs, keeps secrets encrypted and runs delete with the state's stdin", async () => {
    const preview = JSON.parse((await ok(["preview", "--json"])).stdout);
    expect(preview.changeSummary).toMatchObject({ create: 3 });
    expect(host.execLog).toEqual([]);

    const up = await ok(["up", "--yes", "--skip-preview"]);
    // A host script's progress line reaches the operator's `pulumi up` output (forwarded by the provider).
    expect(`${up.stdout}\n${up.stderr}`).toContain("[remote 127.0.0.1] x PROGRESS engine: run: files 1/2 bytes 10/20");
    const outputs = JSON.parse((await ok(["stack", "output", "--json"])).stdout);
    expect(outputs.stdout).toBe("hello [redacted]");
    expect(outputs.presentedHostKey).toBe(host.hostKey);
    expect(Object.keys(outputs.fileHashes)).toEqual([`${host.root}/opt/engine/hello.sh`]);
    // One command for the upload (the archive), one for the run.
    expect(host.execLog).toHaveLength(2);

    const state = (await ok(["stack", "export"])).stdout;
    expect(state).not.toContain(STDIN_SECRET);
    expect(state).not.toContain(privateKeyBody().slice(0, 40));
    expect(state).toContain('require(\\"ssh2\\")');
    const types = JSON.parse(state).deployment.resources.map((resource: { type: string }) => resource.type);
    expect(types).toEqual(expect.arrayContaining(["pulumi-nodejs:dynamic/remote:Files", "pulumi-nodejs:dynamic/remote:Command"]));

    await ok(["destroy", "--yes", "--skip-preview"]);
    expect(readFileSync(path.join(host.root, "deleted-with-stdin.txt"), "utf8")).toBe(STDIN_SECRET);
  }, 120_000);
});
