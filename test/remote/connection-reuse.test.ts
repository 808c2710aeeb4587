// Day-up overhead (issue 13): one SSH connection per host for a chain of commands, the host scripts in one
// checksummed archive (one command, no per-file SFTP), a corrupted or cut archive refused before anything is
// written, and a connection dropped between two steps dialled again. Against a REAL OpenSSH sshd (this machine's
// /usr/sbin/sshd, LogLevel VERBOSE so every login and session shows in its log) on 127.0.108.11, behind a loopback
// TCP relay the tests can cut or freeze.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildArchive, unpackCommand } from "../../infra/remote/archive";
import { remoteCommandProvider as commands } from "../../infra/remote/command";
import type { SshConnection } from "../../infra/remote/connection";
import { type RemoteFilesOutputs, remoteFilesProvider as files } from "../../infra/remote/copy";
import { closePooledConnections, execShared } from "../../infra/remote/pool";
import { openSshAvailable, type OpenSshServer, sshKeygen, startOpenSshServer } from "../support/openssh-server";

const ADDRESS = "127.0.108.11";
const keyDir = mkdtempSync(path.join(tmpdir(), "connection-reuse-keys-"));
const clientKey = sshKeygen("ed25519", keyDir, "client");
/** Where the uploads land on this machine (the sshd's root is this machine's /). */
const uploads = mkdtempSync(path.join(tmpdir(), "connection-reuse-files-"));

if (!openSshAvailable() && process.env.CI) throw new Error("CI must run the real-sshd tests: /usr/sbin/sshd is missing (run npm run setup as root)");

/** A TCP relay to the sshd that counts connections and can cut them (RST/FIN) or freeze them (silently dead). */
interface Relay {
  port: number;
  accepted: number;
  cutAll(): void;
  freezeAll(): void;
  /**
   * The next command's request reaches the host, its confirmation never reaches the client: the client's next
   * message after the host's first answer (the exec request, sent once the channel is open) is passed on, then
   * everything the host says is withheld and both sides are cut.
   */
  cutAfterNextRequest(): void;
  close(): Promise<void>;
}

async function startRelay(to: { host: string; port: number }): Promise<Relay> {
  const live = new Set<{ client: Socket; upstream: Socket }>();
  const relay: Relay = {
    port: 0,
    accepted: 0,
    cutAll() {
      for (const pair of live) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      live.clear();
    },
    freezeAll() {
      // Nothing more flows either way and nobody is told: a host that vanished without a reset.
      for (const pair of live) {
        pair.client.unpipe();
        pair.upstream.unpipe();
        pair.client.pause();
        pair.upstream.pause();
      }
      live.clear();
    },
    cutAfterNextRequest() {
      for (const pair of live) {
        pair.client.unpipe(pair.upstream);
        pair.upstream.unpipe(pair.client);
        // The host's first answer (the channel confirmed) passes; what the client sends after it (the exec request)
        // reaches the host; the host's next words (the exec confirmed) never reach the client.
        let answered = false;
        let requested = false;
        pair.client.on("data", (chunk: Buffer) => {
          if (answered) requested = true;
          pair.upstream.write(chunk);
        });
        pair.upstream.on("data", (chunk: Buffer) => {
          if (!requested) {
            answered = true;
            return void pair.client.write(chunk);
          }
          setTimeout(() => {
            pair.client.destroy();
            pair.upstream.destroy();
          }, 300);
        });
        // unpipe left both paused: data listeners alone do not restart the flow.
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const frozen: Socket[] = [];
  const server: Server = createServer((client) => {
    relay.accepted += 1;
    const upstream = new Socket();
    const pair = { client, upstream };
    live.add(pair);
    frozen.push(client, upstream);
    upstream.connect(to.port, to.host, () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
    const drop = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  const close = relay.close;
  relay.close = async () => {
    for (const socket of frozen) socket.destroy();
    await close();
  };
  await new Promise<void>((resolve) => server.listen(0, ADDRESS, resolve));
  relay.port = (server.address() as { port: number }).port;
  return relay;
}

describe.runIf(openSshAvailable())("one SSH connection per host (real OpenSSH sshd)", () => {
  let server: OpenSshServer;
  beforeAll(async () => {
    server = await startOpenSshServer({ address: ADDRESS, authorizedKeys: { root: [clientKey.publicKey] }, logLevel: "VERBOSE" });
  });
  afterEach(() => closePooledConnections());
  afterAll(async () => {
    await server?.close();
    rmSync(keyDir, { recursive: true, force: true });
    rmSync(uploads, { recursive: true, force: true });
  });

  const connection = (port = server.port, extra: Partial<SshConnection> = {}): SshConnection => ({
    host: ADDRESS, port, user: "root", privateKey: clientKey.privateKey, hostKey: server.hostKeys.ed25519, dialErrorLimit: 2, ...extra,
  });
  const logLines = (pattern: RegExp) => server.log().split("\n").filter((line) => pattern.test(line));
  /** sshd's log from here on: logins, command sessions and SFTP sessions. */
  const mark = () => {
    const start = { logins: logLines(/^Accepted publickey/).length, commands: logLines(/Starting session: command/).length, sftp: logLines(/subsystem 'sftp'|subsystem request for sftp/).length };
    return () => ({
      logins: logLines(/^Accepted publickey/).length - start.logins,
      commands: logLines(/Starting session: command/).length - start.commands,
      sftp: logLines(/subsystem 'sftp'|subsystem request for sftp/).length - start.sftp,
    });
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300)); // sshd writes its log lines

  it("three commands on one host log in once", async () => {
    const since = mark();
    for (const step of ["one", "two", "three"]) {
      const { outs } = await commands.create({ connection: connection(), create: `echo ${step}` });
      expect(outs?.stdout).toBe(step);
    }
    await settle();
    expect(since()).toMatchObject({ logins: 1, commands: 3 });
  });

  it("first contact (no pin) and the steps pinned to the key it recorded share its connection; another pin dials anew", async () => {
    const since = mark();
    const first = await commands.create({ connection: connection(server.port, { hostKey: undefined }), create: "echo first-contact" });
    const recorded = first.outs?.presentedHostKey as string;
    expect(Object.values(server.hostKeys)).toContain(recorded);
    const pinned = await commands.create({ connection: connection(server.port, { hostKey: `${recorded} comment` }), create: "echo pinned" });
    expect(pinned.outs?.stdout).toBe("pinned");
    await settle();
    expect(since()).toMatchObject({ logins: 1, commands: 2 });
    const other = Object.values(server.hostKeys).find((key) => key !== recorded) as string;
    const otherPin = await commands.create({ connection: connection(server.port, { hostKey: other }), create: "echo other" });
    expect(otherPin.outs?.presentedHostKey).toBe(other);
    await settle();
    expect(since()).toMatchObject({ logins: 2, commands: 3 });
  });

  it("an upload of several scripts is one command over one connection, no SFTP", async () => {
    const scripts = Object.fromEntries(["a.sh", "b.sh", "lib/c.sh", "lib/d.sh", "e.sh"].map((name, i) => [`${uploads}/first/${name}`, `echo ${i}\n`]));
    const since = mark();
    await files.create({ connection: connection(), files: scripts, mode: 0o755 });
    await settle();
    expect(since()).toEqual({ logins: 1, commands: 1, sftp: 0 });
    for (const [target, content] of Object.entries(scripts)) {
      expect(readFileSync(target, "utf8")).toBe(content);
      expect(statSync(target).mode & 0o777).toBe(0o755);
    }
  });

  it("the upload and the commands after it share the connection; an unchanged upload sends nothing", async () => {
    const scripts = { [`${uploads}/chain/run.sh`]: "echo ran\n", [`${uploads}/chain/lib.sh`]: "x=1\n" };
    const since = mark();
    const { id, outs } = await files.create({ connection: connection(), files: scripts });
    await files.update!(id, outs as RemoteFilesOutputs, { connection: connection(), files: scripts });
    const run = await commands.create({ connection: connection(), create: `bash ${uploads}/chain/run.sh` });
    expect(run.outs?.stdout).toBe("ran");
    await settle();
    expect(since()).toEqual({ logins: 1, commands: 2, sftp: 0 });
  });

  it("an archive altered or cut on the way is refused by its checksum and nothing is written", async () => {
    const target = `${uploads}/refused/script.sh`;
    const archive = buildArchive({ [target]: "echo must-not-land\n" });
    const altered = Buffer.from(archive.bytes);
    altered[600] ^= 0xff; // a byte of the file's content
    for (const bytes of [altered, archive.bytes.subarray(0, 700)]) {
      const { result } = await execShared(connection(), { command: unpackCommand(archive, archive.bytes.length, 0o755), stdin: bytes });
      expect(result.exitCode).toBe(65);
      expect(result.stderr).toContain(`comfyume-upload: archive refused: received ${bytes.length} of ${archive.bytes.length} bytes with sha256 `);
      expect(result.stderr).toContain(`sent ${archive.sha256}; nothing was written`);
      expect(existsSync(target)).toBe(false);
    }
    // The same archive intact lands.
    const { result } = await execShared(connection(), { command: unpackCommand(archive, archive.bytes.length, 0o755), stdin: archive.bytes });
    expect(result.exitCode).toBe(0);
    expect(readFileSync(target, "utf8")).toBe("echo must-not-land\n");
  });

  it("a connection dropped between two steps is dialled again, once", async () => {
    const relay = await startRelay({ host: ADDRESS, port: server.port });
    try {
      const via = connection(relay.port);
      expect((await commands.create({ connection: via, create: "echo before" })).outs?.stdout).toBe("before");
      relay.cutAll();
      expect((await commands.create({ connection: via, create: "echo after-cut" })).outs?.stdout).toBe("after-cut");
      expect(relay.accepted).toBe(2);
      expect((await commands.create({ connection: via, create: "echo reused" })).outs?.stdout).toBe("reused");
      expect(relay.accepted).toBe(2);
    } finally {
      await relay.close();
    }
  });

  it("a connection that died silently (no reset) is noticed when no channel opens, and dialled again", async () => {
    const relay = await startRelay({ host: ADDRESS, port: server.port });
    try {
      const via = connection(relay.port, { perDialTimeout: 2 });
      expect((await commands.create({ connection: via, create: "echo before" })).outs?.stdout).toBe("before");
      relay.freezeAll();
      expect((await commands.create({ connection: via, create: "echo after-freeze" })).outs?.stdout).toBe("after-freeze");
      expect(relay.accepted).toBe(2);
    } finally {
      await relay.close();
    }
  });

  it("a command whose request was sent on a reused connection that dropped before the confirmation is not run again", async () => {
    const relay = await startRelay({ host: ADDRESS, port: server.port });
    const counter = `${uploads}/sent-once`;
    try {
      const via = connection(relay.port);
      await commands.create({ connection: via, create: "true" });
      relay.cutAfterNextRequest();
      const outcome = await commands.create({ connection: via, create: `echo run >> ${counter}` }).then(() => "succeeded", (e: Error) => e.message);
      // The command runs on the host after the cut: wait (bounded) until it has, then long enough for a second run to show.
      for (const started = Date.now(); !existsSync(counter) && Date.now() - started < 15_000; ) await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(readFileSync(counter, "utf8")).toBe("run\n");
      expect(outcome).toMatch(/lost its connection \(connection closed\) after the command was sent: it may have run, and is not run again/);
      expect(relay.accepted).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it("a command that lost its connection after it started is not run again", async () => {
    const relay = await startRelay({ host: ADDRESS, port: server.port });
    const counter = `${uploads}/runs-once`;
    try {
      const via = connection(relay.port);
      await commands.create({ connection: via, create: "true" });
      const outcome = commands.create({ connection: via, create: `echo run >> ${counter}; sleep 5` }).then(() => "succeeded", (e: Error) => e.message);
      // Cut once the command has started on the host.
      for (let waited = 0; !existsSync(counter) && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      relay.cutAll();
      expect(await outcome).toMatch(/lost its connection/);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(readFileSync(counter, "utf8")).toBe("run\n");
    } finally {
      await relay.close();
    }
  });
});
