// Dialing (host key pinning, retries) and deadlines against a real loopback SSH server.
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteCommandProvider as provider } from "../../infra/remote/command";
import { fingerprintSha256, parseAuthorizedKey, type PublicKeyBlob } from "../../infra/remote/hostkey";
import { dialWithRetries, execOnce, withSshSession } from "../../infra/remote/ssh";
import { utils } from "ssh2";
import { generateKeyPair, publicKeyLine, type SshHost } from "../support/ssh-host";
import { connectionTo, privateKeyBody, processGone, startHost } from "./fixtures";

let host: SshHost;
beforeAll(async () => {
  host = await startHost();
});
afterAll(() => host.close());

function blobOf(line: string): PublicKeyBlob {
  const parsed = parseAuthorizedKey(line);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

describe("host key pinning", () => {
  it("connects when the pinned key matches", async () => {
    const session = await dialWithRetries(connectionTo(host, { hostKey: `${host.hostKey} comment` }));
    session.client.end();
    expect(session.presentedHostKey).toBe(host.hostKey);
  });

  it("refuses another key at once, naming host and both fingerprints", async () => {
    const impostor = generateKeyPair().publicKey;
    const before = host.execLog.length;
    const started = Date.now();
    const error = await provider
      .create({ connection: connectionTo(host, { hostKey: impostor, dialErrorLimit: 5 }), create: "echo should-not-run" })
      .then(() => undefined, (caught: Error) => caught);
    expect(error?.message).toBe(
      `remote create command on 127.0.0.1: host key mismatch for 127.0.0.1:${host.port}: pinned ssh-ed25519 ${fingerprintSha256(blobOf(impostor).blob)}, ` +
        `asked the server for ssh-ed25519, it presented ssh-ed25519 ${fingerprintSha256(blobOf(host.hostKey).blob)}; refused before logging in ` +
        "(update connection.hostKey only if the host was legitimately rebuilt)",
    );
    expect(error?.message).not.toContain(privateKeyBody());
    expect(Date.now() - started).toBeLessThan(3000); // no retries
    expect(host.execLog.length).toBe(before);
  });

  it("a pin of a key type the host does not have is refused at once, naming the type and the fix", async () => {
    const ecdsaPin = publicKeyLine(utils.generateKeyPairSync("ecdsa", { bits: 256 }).private);
    const logs: string[] = [];
    const error = await dialWithRetries(connectionTo(host, { hostKey: ecdsaPin, dialErrorLimit: 5 }), { log: (line) => logs.push(line) })
      .then(() => undefined, (caught: Error) => caught);
    expect(error?.message).toMatch(
      new RegExp(`^host 127\\.0\\.0\\.1:${host.port} has no ecdsa-sha2-nistp256 host key \\(asked for ecdsa-sha2-nistp256; pinned SHA256:.*\\); refused before logging in\\. Fix: pin one of the host's own keys`),
    );
    expect(logs).toEqual([]);
  });
});

describe("dial retries", () => {
  it("keeps dialing until a late-starting server answers", async () => {
    const port = await freePort();
    const logs: string[] = [];
    const dialing = dialWithRetries(
      { ...connectionTo(host), port, dialErrorLimit: 6 }, { log: (line) => logs.push(line), firstBackoffMs: 300, maxBackoffMs: 600 },
    );
    await new Promise((resolve) => setTimeout(resolve, 900));
    const late = await startHost({ port });
    try {
      const session = await dialing;
      const result = await execOnce(session.client, { command: "echo late-but-fine" });
      session.client.end();
      expect(result.stdout).toBe("late-but-fine\n");
      expect(logs.length).toBeGreaterThanOrEqual(1);
      expect(logs[0]).toMatch(new RegExp(`^dial root@127\\.0\\.0\\.1:${port} attempt 1/6 failed \\(.*ECONNREFUSED.*\\); retrying in 300 ms$`));
    } finally {
      await late.close();
    }
  });

  it("a refused dial is re-dialled within its backoff window: a server that starts listening mid-window is reached in that window", async () => {
    const port = await freePort();
    const logs: string[] = [];
    // One window of 10 minutes: sleeping through it would outlast this test's own limit many times over.
    const dialing = dialWithRetries(
      { ...connectionTo(host), port, dialErrorLimit: 2 }, { log: (line) => logs.push(line), firstBackoffMs: 600_000, maxBackoffMs: 600_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 700));
    const late = await startHost({ port });
    try {
      const session = await dialing;
      const result = await execOnce(session.client, { command: "echo reached-mid-window" });
      session.client.end();
      expect(result.stdout).toBe("reached-mid-window\n");
      // Still one logged attempt: the re-dials belong to the first window.
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(/attempt 1\/2 failed \(.*ECONNREFUSED.*\); retrying in 600000 ms$/);
    } finally {
      await late.close();
    }
  }, 30_000);

  it("a refused login gives up after dialErrorLimit attempts (within the grace) naming user and key", async () => {
    const stranger = generateKeyPair();
    const logs: string[] = [];
    const error = await dialWithRetries(
      connectionTo(host, { privateKey: stranger.privateKey, dialErrorLimit: 2 }), { log: (line) => logs.push(line), firstBackoffMs: 50 },
    ).then(() => undefined, (caught: Error) => caught);
    expect(error?.message).toMatch(/^login refused for user "root" at 127\.0\.0\.1:\d+: the host answered the SSH handshake but did not accept the key SHA256:\S+ \(ssh-ed25519\) \(2 attempts over \d+s\)\. Fix: /);
    expect(logs).toHaveLength(1);
    expect(error?.message).not.toContain(stranger.privateKey.split("\n")[1]);
  });
});

describe("timeouts", () => {
  it("the remote timeout kills a hung script and its children", async () => {
    const pidFile = path.join(host.root, "sleeper.pid");
    const started = Date.now();
    const error = await provider
      .create({ connection: connectionTo(host), create: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutSeconds: 1 })
      .then(() => undefined, (caught: Error) => caught);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(error?.message).toMatch(/^remote create command on 127\.0\.0\.1 timed out after 1s \(timeoutSeconds\): stopped with TERM\. Fix: raise timeoutSeconds/);
    expect(await processGone(Number(readFileSync(pidFile, "utf8")))).toBe(true);
  });

  it("the client gives up and closes the connection when the remote side never finishes", async () => {
    // A detached process keeps the output pipe open after `timeout` killed the script, so no exit arrives.
    const pidFile = path.join(host.root, "holder.pid");
    const started = Date.now();
    const result = await withSshSession(connectionTo(host), (session) =>
      execOnce(session.client, { command: `setsid sleep 8 & echo $! > ${pidFile}; sleep 30`, timeoutSeconds: 1, clientGraceMs: 500 }));
    expect(result.deadlineHit).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
  });
});

describe("progress lines while a remote command runs (issue 16)", () => {
  it("execOnce hands each stderr line to onStderrLine as it arrives, not at the end", async () => {
    const go = path.join(host.root, `go-${process.pid}-${Date.now()}`);
    const seen: string[] = [];
    // The command waits (boundedly) for a file the test writes only once the first line has come through.
    const command = `echo 'PROGRESS models: sending: files 1/2' >&2; for i in $(seq 100); do [ -e ${go} ] && break; sleep 0.1; done; ` +
      `[ -e ${go} ] || { echo 'no line came through while running' >&2; exit 3; }; printf 'last line' >&2`;
    const result = await withSshSession(connectionTo(host), (session) =>
      execOnce(session.client, {
        command,
        onStderrLine: (line) => {
          seen.push(line);
          if (line.startsWith("PROGRESS")) writeFileSync(go, "");
        },
      }));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(seen).toEqual(["PROGRESS models: sending: files 1/2", "last line"]);
    expect(result.stderr).toBe("PROGRESS models: sending: files 1/2\nlast line");
  });

  it("the RemoteCommand provider forwards PROGRESS and STALLED lines to its stderr as they come, redacted; other lines stay in the outputs", async () => {
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      const secret = "R2_SECRET_ACCESS_KEY=s3cr3t-value-for-progress";
      const create =
        "read -r line; echo 'x PROGRESS models: hashing: files 3/9 bytes 30/90' >&2; echo 'step models: start' >&2; " +
        "echo \"x WARN: STALLED: step 'models: sending' on ${line#*=}\" >&2";
      await provider.create({ connection: connectionTo(host), create, stdin: `${secret}\n` } as never);
    } finally {
      process.stderr.write = original;
    }
    const forwarded = written.join("").split("\n").filter((l) => l.startsWith("[remote "));
    expect(forwarded).toEqual([
      "[remote 127.0.0.1] x PROGRESS models: hashing: files 3/9 bytes 30/90",
      expect.stringMatching(/^\[remote 127\.0\.0\.1\] x WARN: STALLED: step 'models: sending' on \S*$/),
    ]);
    expect(forwarded.join("\n")).not.toContain("s3cr3t-value-for-progress");
  });
});
