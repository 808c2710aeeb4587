// Remote commands on a machine like a fresh cloud instance: a REAL OpenSSH sshd chrooted in an overlay of the
// simulated cloud's stock image (COMFYUME_SIM_ROOTFS) on 127.97.0.12, with users and dotfiles of the test's own.
// Nothing here touches this machine's /etc: the overlay and its namespaces go when the server closes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REMOTE_PATH, remoteCommandProvider as provider, type RemoteCommandInputs } from "../../infra/remote/command";
import type { SshConnection } from "../../infra/remote/connection";
import { remoteFilesProvider as filesProvider } from "../../infra/remote/copy";
import { withSshSession } from "../../infra/remote/ssh";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const rootfs = process.env.COMFYUME_SIM_ROOTFS;
const keyDir = mkdtempSync(path.join(tmpdir(), "openssh-image-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");

/** Users like a cloud image's: "deploy" with passwordless sudo; "guarded" needs a password; "plain" has no sudo. */
const USERS = `
for user in deploy guarded plain; do useradd --create-home --shell /bin/bash "$user"; done
echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-deploy
echo 'guarded ALL=(ALL) ALL' > /etc/sudoers.d/91-guarded
chmod 440 /etc/sudoers.d/90-deploy /etc/sudoers.d/91-guarded
`;

/** A login environment that puts a bogus directory first, with impostors of the tools the wrapper uses. */
const BOGUS_LOGIN_PATH = `
mkdir -p /opt/bogus/bin
for tool in timeout sudo bash sh env cat id; do
  printf '#!/bin/sh\\necho "bogus %s ran" >&2\\nexit 99\\n' "$tool" > "/opt/bogus/bin/$tool"
  chmod 755 "/opt/bogus/bin/$tool"
done
echo 'PATH="/opt/bogus/bin:/usr/local/bin:/usr/bin:/bin"' > /etc/environment
for home in /root /home/deploy; do
  { echo 'export PATH="/opt/bogus/bin:$PATH"'; cat "$home/.bashrc"; } > "$home/.bashrc.new" && mv "$home/.bashrc.new" "$home/.bashrc"
done
`;

if (!(openSshAvailable() && rootfs) && process.env.CI) throw new Error("CI must run the stock-image sshd tests: this machine's sshd or COMFYUME_SIM_ROOTFS is missing (run npm run setup as root)");

describe.runIf(openSshAvailable() && rootfs)("on a stock image with a real sshd", () => {
  let server: OpenSshServer;
  beforeAll(async () => {
    server = await startOpenSshServer({
      address: "127.97.0.12", rootfs, setup: USERS + BOGUS_LOGIN_PATH,
      authorizedKeys: Object.fromEntries(["root", "deploy", "guarded", "plain"].map((user) => [user, [clientKey.publicKey]])),
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

  describe("a non-root user with passwordless sudo", () => {
    const asDeploy = { user: "deploy" };
    const SECRET = "sudo-stdin-Secret-8817";

    it("runs commands as root through sudo -n, with stdin (secrets) after the script, never on a command line", async () => {
      const script = [
        'echo "uid=$(id -u) path=$PATH"',
        "read -r first",
        'echo "first=$first"',
        "cat > /root/rest.txt",
        "wc -c < /root/rest.txt",
        "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c '[s]udo-stdin' || true",
      ].join("\n");
      const outs = await run({ create: script, stdin: `abc\n${SECRET}\n` }, asDeploy);
      expect(outs.stdout).toBe(`uid=0 path=${REMOTE_PATH}\nfirst=abc\n${SECRET.length + 1}\n0`);
      expect(outs.stderr).toBe("");
    });

    it("the remote timeout still applies (through sudo), also when the script ignores TERM", async () => {
      const timedOut = async (create: string) => (await provider.create({ connection: connection(asDeploy), create, timeoutSeconds: 1 })
        .then(() => undefined, (caught: Error) => caught))?.message;
      expect(await timedOut("sleep 60")).toMatch(/^remote create command on 127\.97\.0\.12 timed out after 1s \(timeoutSeconds\): stopped with TERM/);
      expect(await timedOut("trap '' TERM; sleep 60")).toMatch(
        /^remote create command on 127\.97\.0\.12 timed out after 1s \(timeoutSeconds\): it ignored TERM and was killed with KILL/,
      );
    }, 40_000);

    it("RemoteFiles writes root-owned paths (parents created, mode set, replaced atomically)", async () => {
      const files = {
        "/etc/comfyume/app.conf": "a=1\n", "/opt/comfyume/host/run.sh": "#!/bin/bash\necho run\n", "/opt/comfyume/it's odd.txt": "no newline",
      };
      const created = await filesProvider.create({ connection: connection(asDeploy), files, mode: 0o750 });
      const changed = { ...files, "/etc/comfyume/app.conf": "a=2\n" };
      await filesProvider.update!(created.id, created.outs!, { connection: connection(asDeploy), files: changed, mode: 0o750 });
      const outs = await run({
        create: "stat -c '%U:%G %a' /etc/comfyume/app.conf /opt/comfyume/host/run.sh; cat /etc/comfyume/app.conf; ls -A /etc/comfyume; " +
          "cat \"/opt/comfyume/it's odd.txt\"",
      });
      expect(outs.stdout).toBe("root:root 750\nroot:root 750\na=2\napp.conf\nno newline");
    });

    it("a user whose sudo needs a password gets a clear error naming the user and the fix", async () => {
      for (const user of ["guarded", "plain"]) {
        const error = await provider.create({ connection: connection({ user }), create: "echo must-not-run" })
          .then(() => undefined, (caught: Error) => caught);
        expect(error?.message).toMatch(new RegExp(
          `^remote create command on 127\\.97\\.0\\.12: user "${user}" cannot run commands as root: sudo -n refused \\(sudo: .+\\)\\. ` +
            `Fix: give "${user}" passwordless sudo \\(e\\.g\\. "${user} ALL=\\(ALL\\) NOPASSWD:ALL" in /etc/sudoers\\.d/`,
        ));
        expect(error?.message).not.toContain("must-not-run");
      }
    });
  });

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
      for (const user of ["root", "deploy"]) {
        for (const timeoutSeconds of [undefined, 30]) {
          const outs = await run({ create: probe, timeoutSeconds }, { user });
          expect(outs.stdout).toBe(`${REMOTE_PATH}\n/usr/bin/id\n/usr/bin/timeout`);
          expect(outs.stderr).not.toContain("bogus");
        }
      }
    });

    it("REMOTE_PATH is Ubuntu's default order", () => {
      expect(REMOTE_PATH).toBe("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    });
  });
});
