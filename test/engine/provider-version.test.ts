// Provider code is frozen in state: `delete` runs the serialized code of the last create/update. A stack created
// by older provider code must move onto the current code at the next `up` (an in-place update that runs nothing
// remotely), so that the following `destroy` runs the current delete path. Real CLI, real RemoteCommand, loopback SSH.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";
import type { SshHost } from "../support/ssh-host";
import { clientKey, startHost } from "../remote/fixtures";

const OLD_VERSION = "0.0.0-old";

/** A copy of the provider sources whose RemoteCommand delete ignores the state's script and records "old-code". */
function oldProviderCode(into: string): string {
  for (const entry of ["remote", "providers", "verda", "start", "provider-code-cache.ts", "repo-root.ts"]) {
    fs.cpSync(path.join(repoRoot, "infra", entry), path.join(into, "infra", entry), { recursive: true });
  }
  const versionFile = path.join(into, "infra/providers/version.ts");
  const version = fs.readFileSync(versionFile, "utf8");
  const patchedVersion = version.replace(/PROVIDER_VERSION = "[^"]*"/, `PROVIDER_VERSION = "${OLD_VERSION}"`);
  if (patchedVersion === version) throw new Error("could not patch PROVIDER_VERSION in the old copy");
  fs.writeFileSync(versionFile, patchedVersion);
  const commandFile = path.join(into, "infra/remote/command.ts");
  const command = fs.readFileSync(commandFile, "utf8");
  const oldDelete = 'await runCommandOrThrow("delete", \'echo old-code >> "$SSH_HOST_ROOT/marker"\', pickCommandInputs(props));\n    return;\n';
  const patchedCommand = command.replace(/(async delete\(_id, props\) \{\n)/, `$1    ${oldDelete}`);
  if (patchedCommand === command) throw new Error("could not patch RemoteCommand.delete in the old copy");
  fs.writeFileSync(commandFile, patchedCommand);
  return into;
}

describe.runIf(pulumiToolchainReady())("provider version: the next up moves old state onto the current provider code", () => {
  let host: SshHost;
  let sandbox: PulumiSandbox;
  let env: NodeJS.ProcessEnv;
  const ok = async (args: string[], codeDir: string) => {
    const result = await sandbox.runAsync(args, { env: { ...env, PROVIDER_CODE_DIR: codeDir } });
    if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
    return result;
  };

  beforeAll(async () => {
    host = await startHost();
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/provider-version"));
    env = {
      COMFYUME_NO_POLICY: "1",
      REMOTE_E2E_PORT: String(host.port),
      REMOTE_E2E_HOST_KEY: host.hostKey,
      REMOTE_E2E_PRIVATE_KEY: clientKey.privateKey,
    };
    await ok(["stack", "init", "dev"], repoRoot);
  }, 60_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await host?.close();
  });

  it("updates in place without running anything, then destroy runs the new delete code", async () => {
    const oldCode = oldProviderCode(path.join(sandbox.dir, "old-code"));
    await ok(["up", "--yes", "--skip-preview"], oldCode);
    expect(host.execLog).toHaveLength(1);
    expect(host.execLog[0].command).toContain("echo created");

    const preview = JSON.parse((await ok(["preview", "--json"], repoRoot)).stdout);
    const step = preview.steps.find((s: { urn: string }) => s.urn.endsWith("::run"));
    // (--json lists no step for an unchanged resource; a dynamic provider reports no per-key reasons)
    expect(step?.op ?? "same").toBe("update");

    await ok(["up", "--yes", "--skip-preview"], repoRoot);
    expect(host.execLog).toHaveLength(1);
    const state = JSON.parse((await ok(["stack", "export"], repoRoot)).stdout);
    const run = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::run"));
    expect(run.outputs.providerVersion).toBe(PROVIDER_VERSION);
    expect(run.outputs.stdout).toBe("created");

    await ok(["destroy", "--yes", "--skip-preview"], repoRoot);
    expect(fs.readFileSync(path.join(host.root, "marker"), "utf8")).toBe("new-code\n");
  }, 180_000);
});
