// Remote commands on a machine like a fresh cloud instance: a REAL OpenSSH sshd chrooted in an overlay of the
// simulated cloud's stock image (COMFYUME_SIM_ROOTFS) on 127.97.0.12, with users and dotfiles of the test's own.
// Nothing here touches this machine's /etc: the overlay and its namespaces go when the server closes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REMOTE_PATH, remoteCommandProvider as provider, type RemoteCommandInputs } from "../../infra/remote/command";
import type { SshConnection } from "../../infra/remote/connection";
import { withSshSession } from "../../infra/remote/ssh";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const rootfs = process.env.COMFYUME_SIM_ROOTFS;
const keyDir = mkdtempSync(path.join(tmpdir(), "openssh-image-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");

/** A login environment that puts a bogus directory first, with impostors of the tools the wrapper uses. */
const BOGUS_LOGIN_PATH = `
mkdir -p /opt/bogus/bin
for tool in timeout sudo bash sh env cat id; do
  printf '#!/bin/sh\\necho "bogus %s ran" >&2\\nexit 99\\n' "$tool" > "/opt/bogus/bin/$tool"
  chmod 755 "/opt/bogus/bin/$tool"
done
echo 'PATH="/opt/bogus/bin:/usr/local/bin:/usr/bin:/bin"' > /etc/environment
for home in /root; do
  { echo 'export PATH="/opt/bogus/bin:$PATH"'; cat "$home/.bashrc"; } > "$home/.bashrc.new" && mv "$home/.bashrc.new" "$home/.bashrc"
done
`;

describe.runIf(openSshAvailable() && rootfs)("on a stock image with a real sshd", () => {
  let server: OpenSshServer;
  beforeAll(async () => {
    server = await startOpenSshServer({
      address: "127.97.0.12", rootfs, setup: BOGUS_LOGIN_PATH, authorizedKeys: { root: [clientKey.publicKey] },
    });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const connection = (extra: Partial<SshConnection> = {}): SshConnection => ({
    host: server.host, port: server.port, user: "root", privateKey: clientKey.privateKey, dialErrorLimit: 2, ...extra,
  });
  const run = async (inputs: Omit<RemoteCommandInputs, "connection">, extra: Partial<SshConnection> = {}) =>
    (await provider.create({ connection: connection(extra), ...inputs })).outs!;

  describe("explicit PATH", () => {
    it("the login shell's PATH (/etc/environment, ~/.bashrc) does not change what runs", async () => {
      const probe = 'echo "$PATH"; command -v id timeout';
      // The login environment really is bogus: a bare exec request (no wrapper) sees it.
      const bare = await withSshSession(connection(), (session) => new Promise<string>((resolve, reject) => {
        session.client.exec('echo "$PATH"', (error, channel) => {
          if (error) return reject(error);
          let out = "";
          channel.on("data", (chunk: Buffer) => (out += chunk.toString())).on("close", () => resolve(out));
        });
      }));
      expect(bare).toMatch(/^\/opt\/bogus\/bin:/);
      for (const timeoutSeconds of [undefined, 30]) {
        const outs = await run({ create: probe, timeoutSeconds });
        expect(outs.stdout).toBe(`${REMOTE_PATH}\n/usr/bin/id\n/usr/bin/timeout`);
        expect(outs.stderr).not.toContain("bogus");
      }
    });

    it("REMOTE_PATH is Ubuntu's default order", () => {
      expect(REMOTE_PATH).toBe("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    });
  });
});
