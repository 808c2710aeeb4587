// The rescue's script upload goes the way every other upload goes (infra/remote/copy.ts uploadArchive): one
// checksummed archive over one command on the host's shared connection, no SFTP session. Against a REAL OpenSSH
// sshd (this machine's /usr/sbin/sshd, LogLevel VERBOSE: every login, command and SFTP session is in its log) on
// 127.0.105.21; the uploads land in a temporary directory of this machine.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SCRIPTS_DIR, SCRIPT_MODE } from "../../components/host-scripts";
import { closePooledConnections } from "../../infra/remote/pool";
import { RESCUE_SCRIPTS, uploadScripts, type RescueHost } from "../../infra/rescue/remote";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const ADDRESS = "127.0.105.21";
const keyDir = mkdtempSync(path.join(tmpdir(), "rescue-upload-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");
const target = mkdtempSync(path.join(tmpdir(), "rescue-upload-files-"));

if (!openSshAvailable() && process.env.CI) throw new Error("CI must run the real-sshd tests: /usr/sbin/sshd is missing (run npm run setup as root)");

describe.runIf(openSshAvailable())("rescue script upload (real OpenSSH sshd)", () => {
  let server: OpenSshServer;
  beforeAll(async () => {
    server = await startOpenSshServer({ address: ADDRESS, authorizedKeys: { root: [clientKey.publicKey] }, logLevel: "VERBOSE" });
  });
  afterAll(async () => {
    closePooledConnections();
    await server?.close();
    rmSync(keyDir, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  });

  const count = (pattern: RegExp) => server.log().split("\n").filter((line) => pattern.test(line)).length;

  it("sends the scripts as one archive in one command, no SFTP, each file whole and executable", async () => {
    const host: RescueHost = {
      connection: { host: ADDRESS, port: server.port, user: "root", privateKey: clientKey.privateKey, hostKey: server.hostKeys.ed25519, dialErrorLimit: 2 },
      presentedHostKey: server.hostKeys.ed25519,
    };
    const scriptsDir = path.join(target, "opt/comfyume/scripts");
    const before = { sftp: count(/subsystem 'sftp'|subsystem request for sftp/), commands: count(/Starting session: command/) };

    const uploaded = await uploadScripts(host, { scriptsDir, scratchMount: "/mnt/scratch", hostEnv: {} });
    closePooledConnections();
    await new Promise((resolve) => setTimeout(resolve, 300)); // sshd writes its log lines

    expect(uploaded).toBeGreaterThanOrEqual(RESCUE_SCRIPTS.length);
    for (const script of ["host/prepare-scratch.sh", "host/backup-mello.sh", "lib/common.sh"]) {
      const remote = path.join(scriptsDir, script);
      expect(readFileSync(remote, "utf8")).toBe(readFileSync(path.join(LOCAL_SCRIPTS_DIR, script), "utf8"));
      expect(statSync(remote).mode & 0o7777).toBe(SCRIPT_MODE);
    }
    expect({ sftp: count(/subsystem 'sftp'|subsystem request for sftp/) - before.sftp, commands: count(/Starting session: command/) - before.commands }).toEqual({ sftp: 0, commands: 1 });
  });
});
