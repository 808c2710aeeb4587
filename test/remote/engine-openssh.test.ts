// RemoteCommand through the real Pulumi engine (CLI, language host, dynamic-provider host) against a REAL OpenSSH
// sshd with ed25519, ECDSA and RSA host keys (test/support/openssh-server.ts, 127.97.0.13): every pin type is
// accepted, a wrong pin is refused before login, a key the host does not accept fails in well under a minute.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprintSha256, parseAuthorizedKey } from "../../infra/remote/hostkey";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";

function fingerprintOf(line: string): string {
  const parsed = parseAuthorizedKey(line);
  if (typeof parsed === "string") throw new Error(parsed);
  return fingerprintSha256(parsed.blob);
}

if (!(pulumiToolchainReady() && openSshAvailable()) && process.env.CI) throw new Error("CI must run the engine tests against a real sshd: the Pulumi toolchain or openssh-server is missing (run npm run setup as root)");

describe.runIf(pulumiToolchainReady() && openSshAvailable())("RemoteCommand under the real engine against a real sshd", () => {
  const work = mkdtempSync(path.join(tmpdir(), "engine-openssh-"));
  const clientKey = sshKeygen("ed25519", work, "client");
  let server: OpenSshServer;
  let sandbox: PulumiSandbox;
  const marker = (stack: string) => path.join(work, `ran-${stack}.txt`);
  const logins = () => server.log().split("\n").filter((line) => /^(Accepted|Failed) publickey|authenticating user/.test(line));

  /** `pulumi up` of a fresh stack with these pins and this login key; bounded at 150 s (killed: status -1).
   * A healthy run takes 10–60 s (the latter on a loaded machine); a refused login retried like a slow boot runs
   * about 300 s, so the bound still tells the two apart. */
  async function up(stack: string, pins: Record<string, string>, privateKey = clientKey.privateKey) {
    const env = {
      COMFYUME_REPO: repoRoot, OPENSSH_E2E_HOST: server.host, OPENSSH_E2E_PORT: String(server.port),
      OPENSSH_E2E_PRIVATE_KEY: privateKey, OPENSSH_E2E_PINS: JSON.stringify(pins), OPENSSH_E2E_MARKER: marker(stack),
    };
    const init = await sandbox.runAsync(["stack", "init", stack], { env });
    if (init.status !== 0) throw new Error(`stack init ${stack} failed:\n${init.stderr}`);
    const result = await sandbox.runAsync(["up", "--yes", "--skip-preview", "--stack", stack], { env, timeoutMs: 150_000 });
    return { ...result, env, output: `${result.stdout}\n${result.stderr}` };
  }

  beforeAll(async () => {
    server = await startOpenSshServer({ address: "127.97.0.13", authorizedKeys: { root: [clientKey.publicKey] } });
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/engine-openssh"));
  }, 60_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("pins of all three host key types are accepted", async () => {
    const result = await up("pins", server.hostKeys);
    expect(result.status, result.output).toBe(0);
    const outputs = JSON.parse((await sandbox.runAsync(["stack", "output", "--json", "--show-secrets", "--stack", "pins"], { env: result.env })).stdout);
    expect(outputs.ran).toEqual({ ed25519: "pinned-ed25519 as root", ecdsa: "pinned-ecdsa as root", rsa: "pinned-rsa as root" });
    expect(outputs.presented).toEqual(server.hostKeys);
  }, 200_000);

  it("a wrong pin is refused before login and nothing runs", async () => {
    const impostor = sshKeygen("ecdsa", work, "impostor").publicKey;
    const before = logins();
    const result = await up("wrongpin", { ecdsa: impostor });
    expect(result.status).not.toBe(0);
    expect(result.status, "pulumi up was killed at 150 s").not.toBe(-1);
    expect(result.output).toContain(`host key mismatch for 127.97.0.13:${server.port}: pinned ecdsa-sha2-nistp256 ${fingerprintOf(impostor)}`);
    expect(result.output).toContain("refused before logging in");
    expect(logins()).toEqual(before);
    expect(existsSync(marker("wrongpin"))).toBe(false);
  }, 200_000);

  it("a login key the host does not accept fails within the bound with the user, fingerprint and fix", async () => {
    const stranger = sshKeygen("ed25519", work, "stranger");
    const result = await up("wrongkey", { ed25519: server.hostKeys.ed25519 }, stranger.privateKey);
    expect(result.status, "pulumi up was killed at 150 s: the refused login was retried like a slow boot").not.toBe(-1);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain(`login refused for user "root" at 127.97.0.13:${server.port}`);
    expect(result.output).toContain(`did not accept the key ${fingerprintOf(stranger.publicKey)} (ssh-ed25519)`);
    expect(result.output).toContain("Fix: add this key's public half to ~root/.ssh/authorized_keys");
    expect(result.output).not.toContain(stranger.privateKey.split("\n")[1]);
    expect(existsSync(marker("wrongkey"))).toBe(false);
    expect(readFileSync(marker("pins"), "utf8").split("\n").filter(Boolean).sort()).toEqual(["ecdsa", "ed25519", "rsa"]);
  }, 200_000);
});
