// Dialing and running commands against a REAL OpenSSH sshd (this machine's /usr/sbin/sshd, own config, host
// keys of all three types, on 127.97.0.11): what a Verda instance or mello presents, not the ssh2 test server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteCommandProvider as provider, type RemoteCommandInputs } from "../../infra/remote/command";
import type { SshConnection } from "../../infra/remote/connection";
import { fingerprintSha256, parseAuthorizedKey } from "../../infra/remote/hostkey";
import { dialWithRetries, execOnce } from "../../infra/remote/ssh";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const keyDir = mkdtempSync(path.join(tmpdir(), "openssh-test-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");

function fingerprintOf(line: string): string {
  const parsed = parseAuthorizedKey(line);
  if (typeof parsed === "string") throw new Error(parsed);
  return fingerprintSha256(parsed.blob);
}

if (!openSshAvailable() && process.env.CI) throw new Error("CI must run the real-sshd tests: this machine's /usr/sbin/sshd (openssh-server) is missing (run npm run setup as root)");

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
  /** sshd's log lines for logins that were accepted or failed (authentication was attempted). */
  const logins = () => server.log().split("\n").filter((line) => /^(Accepted|Failed) publickey|authenticating user/.test(line));
  const failureOf = async (inputs: RemoteCommandInputs): Promise<string> => {
    const error = await provider.create(inputs).then(() => undefined, (caught: Error) => caught);
    expect(error, "expected the command to fail").toBeInstanceOf(Error);
    return (error as Error).message;
  };

  describe("host key pins", () => {
    it.each(["ed25519", "ecdsa", "rsa"] as const)("a pinned %s host key is accepted", async (type) => {
      const session = await dialWithRetries(connection({ hostKey: `${server.hostKeys[type]} root@host` }));
      try {
        expect(session.presentedHostKey).toBe(server.hostKeys[type]);
        expect((await execOnce(session.client, { command: "echo pinned-ok" })).stdout).toBe("pinned-ok\n");
      } finally {
        session.client.end();
      }
    });

    it("a wrong pin is refused at once, before logging in, naming the algorithms asked for and the pinned key", async () => {
      const impostor = sshKeygen("ecdsa", keyDir, "impostor-ecdsa").publicKey;
      const loginsBefore = logins();
      const message = await failureOf({ connection: connection({ hostKey: impostor, dialErrorLimit: 5 }), create: "echo must-not-run" });
      expect(message).toBe(
        `remote create command on 127.97.0.11: host key mismatch for 127.97.0.11:${server.port}: pinned ecdsa-sha2-nistp256 ` +
          `${fingerprintOf(impostor)}, asked the server for ecdsa-sha2-nistp256, it presented ecdsa-sha2-nistp256 ` +
          `${fingerprintOf(server.hostKeys.ecdsa)}; refused before logging in (update connection.hostKey only if the host was ` +
          "legitimately rebuilt)",
      );
      await new Promise((resolve) => setTimeout(resolve, 300)); // let sshd log the closed connection
      expect(logins()).toEqual(loginsBefore);
      // Disconnect reason 3 (host key not verifiable) while sshd is still before authentication.
      expect(server.log()).toMatch(/Received disconnect from 127\.0\.0\.1 port \d+:3: .*\[preauth\]/);
    });

    it("an RSA pin asks for the SHA-2 RSA signatures (and ssh-rsa) and says so on a mismatch", async () => {
      const impostor = sshKeygen("rsa", keyDir, "impostor-rsa").publicKey;
      const message = await failureOf({ connection: connection({ hostKey: impostor }), create: "echo must-not-run" });
      expect(message).toContain("pinned ssh-rsa ");
      expect(message).toContain("asked the server for rsa-sha2-512, rsa-sha2-256, ssh-rsa, it presented ssh-rsa ");
    });
  });

  describe("login", () => {
    it("a key the host does not accept fails after a short grace with the user, the key's fingerprint and the fix", async () => {
      const stranger = sshKeygen("ed25519", keyDir, "stranger");
      const logs: string[] = [];
      // The project's default dialErrorLimit (40): before, each refused login was retried like a slow boot.
      const error = await dialWithRetries(
        connection({ privateKey: stranger.privateKey, dialErrorLimit: 40 }),
        { log: (line) => logs.push(line), firstBackoffMs: 100, maxBackoffMs: 300, authFailureGraceMs: 1500 },
      ).then(() => undefined, (caught: Error) => caught);
      expect(error?.message).toMatch(new RegExp(
        `^login refused for user "root" at 127\\.97\\.0\\.11:${server.port}: the host answered the SSH handshake but did not ` +
          `accept the key ${fingerprintOf(stranger.publicKey).replace(/[+/]/g, "\\$&")} \\(ssh-ed25519\\) \\(\\d+ attempts over \\d+s\\)\\. ` +
          "Fix: add this key's public half to ~root/\\.ssh/authorized_keys on the host",
      ));
      expect(error?.message).not.toContain(stranger.privateKey.split("\n")[1]);
      expect(logs.length).toBeGreaterThanOrEqual(1); // still retried a little: cloud-init may add the key late
      expect(logs.length).toBeLessThan(15);
    });

    it("a key installed shortly after the host answers is accepted (cloud-init adds keys after sshd starts)", async () => {
      const late = sshKeygen("ed25519", keyDir, "late");
      const dialing = dialWithRetries(connection({ privateKey: late.privateKey, dialErrorLimit: 40 }), { firstBackoffMs: 200, maxBackoffMs: 400 });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      server.authorize("root", late.publicKey);
      const session = await dialing;
      session.client.end();
      expect(session.presentedHostKey).toMatch(/^ssh-ed25519 /);
    });
  });

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
