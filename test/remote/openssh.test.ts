// Dialing and running commands against a REAL OpenSSH sshd (this machine's /usr/sbin/sshd, own config, host
// keys of all three types, on 127.97.0.11): what a Verda instance or mello presents, not the ssh2 test server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteCommandProvider as provider, type RemoteCommandInputs } from "../../infra/remote/command";
import type { SshConnection } from "../../infra/remote/connection";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const keyDir = mkdtempSync(path.join(tmpdir(), "openssh-test-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");

describe.runIf(openSshAvailable())("against a real OpenSSH sshd", () => {
  let server: OpenSshServer;
  beforeAll(async () => {
    server = await startOpenSshServer({ address: "127.97.0.11", authorizedKeys: { root: [clientKey.publicKey] } });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const connection = (extra: Partial<SshConnection> = {}): SshConnection => ({
    host: server.host, port: server.port, user: "root", privateKey: clientKey.privateKey, dialErrorLimit: 2, ...extra,
  });
  const failureOf = async (inputs: RemoteCommandInputs): Promise<string> => {
    const error = await provider.create(inputs).then(() => undefined, (caught: Error) => caught);
    expect(error, "expected the command to fail").toBeInstanceOf(Error);
    return (error as Error).message;
  };

  describe("timeouts", () => {
    it("a script that ignores TERM is killed (KILL) and still reported as a timeout, naming the limit and the fix", async () => {
      const message = await failureOf({ connection: connection(), create: "trap '' TERM; sleep 60", timeoutSeconds: 1 });
      expect(message).toMatch(/^remote create command on 127\.97\.0\.11 timed out after 1s \(timeoutSeconds\)/);
      expect(message).toContain("killed with KILL");
      expect(message).toMatch(/Fix: .*raise timeoutSeconds/);
    }, 40_000);

    it("a script that stops on TERM is reported as a timeout too", async () => {
      const message = await failureOf({ connection: connection(), create: "sleep 60", timeoutSeconds: 1 });
      expect(message).toMatch(/^remote create command on 127\.97\.0\.11 timed out after 1s \(timeoutSeconds\)/);
      expect(message).toContain("stopped with TERM");
    }, 40_000);
  });
});
