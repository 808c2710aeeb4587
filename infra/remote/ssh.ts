// SSH dialing (retries, host key pinning) and one-shot command execution on top of the ssh2 package.
// Runs inside the dynamic-provider process: ssh2 is required by package name inside functions so the
// serialized provider says `require("ssh2")` (see docs/remote-commands.md), and nothing here holds state.
import type { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm, SFTPWrapper } from "ssh2";
import {
  DEFAULT_DIAL_ERROR_LIMIT, DEFAULT_PER_DIAL_TIMEOUT_SECONDS, DEFAULT_PORT, DEFAULT_USER, describeTarget,
  type SshConnection,
} from "./connection";
import {
  authorizedKeyFromBlob, fingerprintSha256, hostKeyAlgorithmsFor, keyTypeOfBlob, parseAuthorizedKey, type PublicKeyBlob,
} from "./hostkey";
import { REMOTE_KILL_AFTER_SECONDS, remoteInvocation } from "./remote-shell";

export interface DialOptions {
  /** Progress lines (retries). Default: stderr of the provider process, which the engine keeps in its logs. */
  log?: (line: string) => void;
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long refused logins are retried once the host answered the handshake. Default `AUTH_FAILURE_GRACE_MS`. */
  authFailureGraceMs?: number;
}

export interface SshSession {
  client: Client;
  /** The key the server presented, authorized_keys format: what to pin as `hostKey`. */
  presentedHostKey: string;
}

/** Errors that retrying cannot fix carry this flag (host key mismatch, unusable private key). */
interface DialError extends Error {
  permanent?: boolean;
  /** The host answered the SSH handshake and refused the login (not a slow boot). */
  authFailure?: boolean;
}

/**
 * Refused logins are retried this long after the first one (cloud-init may install the key just after sshd
 * starts), then fail with the user and key fingerprint instead of being retried like a slow boot.
 */
export const AUTH_FAILURE_GRACE_MS = 30_000;

const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 4;

export function logToStderr(line: string): void {
  process.stderr.write(`[remote] ${line}\n`);
}

/** Dials until connected or `dialErrorLimit` attempts failed; a host key mismatch fails at once. */
export async function dialWithRetries(connection: SshConnection, options: DialOptions = {}): Promise<SshSession> {
  const log = options.log ?? logToStderr;
  const limit = connection.dialErrorLimit ?? DEFAULT_DIAL_ERROR_LIMIT;
  const attempts = limit === -1 ? Number.POSITIVE_INFINITY : Math.max(1, limit);
  const firstBackoffMs = options.firstBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 8_000;
  const authGraceMs = options.authFailureGraceMs ?? AUTH_FAILURE_GRACE_MS;
  const target = describeTarget(connection);
  let lastError: DialError = new Error("no attempt made");
  let firstAuthFailureAt: number | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await dialOnce(connection);
    } catch (error) {
      lastError = error as DialError;
      if (lastError.permanent) throw lastError;
      const waitMs = Math.min(firstBackoffMs * 2 ** (attempt - 1), maxBackoffMs);
      if (lastError.authFailure) {
        firstAuthFailureAt = firstAuthFailureAt ?? Date.now();
        const refusedForMs = Date.now() - firstAuthFailureAt;
        if (attempt >= attempts || refusedForMs + waitMs > authGraceMs) throw loginRefused(connection, attempt, refusedForMs);
      }
      if (attempt >= attempts) break;
      const of = Number.isFinite(attempts) ? `/${attempts}` : "";
      log(`dial ${target} attempt ${attempt}${of} failed (${lastError.message}); retrying in ${waitMs} ms`);
      const reached = isRefused(lastError) ? await dialWhileRefused(connection, waitMs) : undefined;
      if (reached) return reached;
      if (!isRefused(lastError)) await sleep(waitMs);
    }
  }
  throw new Error(`could not connect to ${target} after ${attempts} attempt(s): ${lastError.message}`);
}

/** A refused connection is re-dialled this often within its backoff window. */
export const REFUSED_REDIAL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The host answered with a reset: up, but nothing listens yet (a booting sshd). Cheap to ask again. */
function isRefused(error: Error): boolean {
  return /ECONNREFUSED/.test(error.message);
}

/**
 * Spends a refused dial's backoff window re-dialling every REFUSED_REDIAL_MS instead of sleeping through it: a booting
 * host's sshd is reached within a quarter second of listening, not up to a whole window (0.5, 1, 2, 4, 8 s) later.
 * The attempts and the total wait stay those of the backoff. Any other outcome ends the window's re-dials and leaves it
 * to the next attempt, which handles it as usual (a host key mismatch fails there, a refused login gets its grace).
 */
async function dialWhileRefused(connection: SshConnection, windowMs: number): Promise<SshSession | undefined> {
  const until = Date.now() + windowMs;
  for (;;) {
    const left = until - Date.now();
    if (left <= REFUSED_REDIAL_MS) {
      await sleep(Math.max(0, left));
      return undefined;
    }
    await sleep(REFUSED_REDIAL_MS);
    try {
      return await dialOnce(connection);
    } catch (error) {
      if (!isRefused(error as Error)) {
        await sleep(Math.max(0, until - Date.now()));
        return undefined;
      }
    }
  }
}

function dialOnce(connection: SshConnection): Promise<SshSession> {
  const { Client: SshClient } = require("ssh2") as typeof import("ssh2");
  const pinned = connection.hostKey ? parseAuthorizedKey(connection.hostKey) : undefined;
  if (typeof pinned === "string") return Promise.reject(permanent(`connection.hostKey is invalid: ${pinned}`));
  return new Promise<SshSession>((resolve, reject) => {
    const client = new SshClient();
    let presented: Buffer | undefined;
    let settled = false;
    const fail = (error: DialError) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(error);
    };
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      resolve({ client, presentedHostKey: presented ? authorizedKeyFromBlob(presented) : "" });
    });
    client.on("error", (error: Error) => {
      if (pinned && presented && !presented.equals(pinned.blob)) fail(hostKeyMismatch(connection, pinned, presented));
      else if (pinned && /no matching host key format/.test(error.message)) fail(noPinnedKeyType(connection, pinned));
      // ssh2's messages describe the failure (ECONNREFUSED, auth methods failed, handshake timeout), not inputs.
      else fail(Object.assign(new Error(error.message), { authFailure: (error as { level?: string }).level === "client-authentication" }));
    });
    client.on("close", () => fail(new Error("connection closed before the SSH session was ready")));
    const perDialSeconds = connection.perDialTimeout ?? DEFAULT_PER_DIAL_TIMEOUT_SECONDS;
    const config: ConnectConfig = {
      host: connection.host,
      port: connection.port ?? DEFAULT_PORT,
      username: connection.user ?? DEFAULT_USER,
      privateKey: connection.privateKey,
      readyTimeout: perDialSeconds * 1000,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      // Ask for the pinned key's algorithm: the server then presents that key, and the verifier below refuses
      // any other one during key exchange, before authentication starts.
      ...(pinned ? { algorithms: { serverHostKey: hostKeyAlgorithmsFor(pinned.type) as ServerHostKeyAlgorithm[] } } : {}),
      hostVerifier: (key: Buffer) => {
        presented = Buffer.from(key);
        return !pinned || presented.equals(pinned.blob);
      },
    };
    try {
      client.connect(config);
    } catch (error) {
      // Synchronous failures are configuration problems (e.g. an unparsable private key): no retry.
      fail(permanent((error as Error).message));
    }
  });
}

function hostKeyMismatch(connection: SshConnection, pinned: PublicKeyBlob, presented: Buffer): DialError {
  return permanent(
    `host key mismatch for ${connection.host}:${connection.port ?? DEFAULT_PORT}: pinned ${pinned.type} ` +
      `${fingerprintSha256(pinned.blob)}, asked the server for ${hostKeyAlgorithmsFor(pinned.type).join(", ")}, it presented ` +
      `${keyTypeOfBlob(presented) ?? "unknown"} ${fingerprintSha256(presented)}; refused before logging in (update ` +
      "connection.hostKey only if the host was legitimately rebuilt)",
  );
}

function noPinnedKeyType(connection: SshConnection, pinned: PublicKeyBlob): DialError {
  return permanent(
    `host ${connection.host}:${connection.port ?? DEFAULT_PORT} has no ${pinned.type} host key (asked for ` +
      `${hostKeyAlgorithmsFor(pinned.type).join(", ")}; pinned ${fingerprintSha256(pinned.blob)}); refused before ` +
      "logging in. Fix: pin one of the host's own keys in connection.hostKey (its presentedHostKey output, or " +
      "`ssh-keyscan <host>` checked against the cloud console)",
  );
}

/**
 * "SHA256:… (ssh-ed25519)" for the login key, from its public half: names the key without revealing it. Also what the
 * connection pool keys connections by (a key that does not parse never gets a connection: ssh2 refuses it at dial).
 */
export function loginKeyDescription(privateKey: string | undefined): string {
  if (!privateKey) return "(no connection.privateKey set)";
  const { utils } = require("ssh2") as typeof import("ssh2");
  const parsed = utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return "(unparsable connection.privateKey)";
  return `${fingerprintSha256(key.getPublicSSH())} (${key.type})`;
}

function loginRefused(connection: SshConnection, attempts: number, refusedForMs: number): DialError {
  const user = connection.user ?? DEFAULT_USER;
  const home = user === "root" ? "~root" : `~${user}`;
  return permanent(
    `login refused for user "${user}" at ${connection.host}:${connection.port ?? DEFAULT_PORT}: the host answered the SSH ` +
      `handshake but did not accept the key ${loginKeyDescription(connection.privateKey)} (${attempts} attempts over ` +
      `${Math.round(refusedForMs / 1000)}s). Fix: add this key's public half to ${home}/.ssh/authorized_keys on the host ` +
      "(on Verda: create the instance with it), or set connection.privateKey to the key the host authorizes and " +
      "connection.user to a user that has it",
  );
}

function permanent(message: string): DialError {
  const error: DialError = new Error(message);
  error.permanent = true;
  return error;
}

export interface ExecRequest {
  command: string;
  /** The login user: when not root, the command runs as root through `sudo -n` (see remote-shell.ts). */
  user?: string;
  /** Text, or bytes (an archive). */
  stdin?: string | Buffer;
  /** Give up when the server has not opened the channel within this (a reused connection that died silently). */
  openTimeoutMs?: number;
  /** Remote `timeout` kills the command after this; the client gives up `clientGraceMs` later. */
  timeoutSeconds?: number;
  clientGraceMs?: number;
  /** Called with each complete stderr line as it arrives (progress of a long script); errors it throws are ignored. */
  onStderrLine?: (line: string) => void;
}

export interface ExecResult {
  /** null when no exit status arrived (killed by a signal, connection lost, client deadline). */
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /** The client deadline fired and closed the channel. */
  deadlineHit: boolean;
  /** Set when the connection failed mid-command. */
  connectionError?: string;
  /** The server confirmed the exec request (the command started). */
  channelOpened: boolean;
  /**
   * The exec request went out (the server confirmed the session channel; ssh2 sends the request at once): from then
   * on the command may have started, even with no confirmation, so it is never run again.
   */
  requestSent: boolean;
  /** From the exec request to the end: tells a KILL by the remote timeout from an earlier one. */
  elapsedMs?: number;
}

const DEFAULT_CLIENT_GRACE_MS = (REMOTE_KILL_AFTER_SECONDS + 5) * 1000;

export { REMOTE_KILL_AFTER_SECONDS, shellQuote, wrapWithRemoteTimeout } from "./remote-shell";

export function execOnce(client: Client, request: ExecRequest): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exitCode: number | null = null;
    let signal: string | undefined;
    let channel: ClientChannel | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let openTimer: NodeJS.Timeout | undefined;
    let channelOpened = false;
    let requestSent = false;
    let finished = false;
    const startedAt = Date.now();
    // Declared before `finish` on purpose: Pulumi's closure serializer treats a const referenced above its
    // declaration as a missing free variable ("Unexpected missing variable in closure environment").
    const listeners = { error: (_error: Error) => undefined as void, close: () => undefined as void };
    const lines = { pending: Buffer.alloc(0) };
    const emitLine = (bytes: Buffer) => {
      try {
        request.onStderrLine?.(bytes.toString("utf8"));
      } catch {
        // a reporting callback never breaks the command
      }
    };
    const finish = (extra: { deadlineHit?: boolean; connectionError?: string } = {}) => {
      if (finished) return;
      finished = true;
      if (lines.pending.length > 0) emitLine(lines.pending);
      if (deadline) clearTimeout(deadline);
      if (openTimer) clearTimeout(openTimer);
      client.removeListener("error", listeners.error);
      client.removeListener("close", listeners.close);
      resolve({
        exitCode, signal, deadlineHit: extra.deadlineHit ?? false, connectionError: extra.connectionError, elapsedMs: Date.now() - startedAt, channelOpened, requestSent,
        stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8"),
      });
    };
    listeners.error = (error: Error) => finish({ connectionError: error.message });
    listeners.close = () => finish({ connectionError: "connection closed" });
    client.on("error", listeners.error);
    client.on("close", listeners.close);
    if (request.timeoutSeconds !== undefined) {
      const graceMs = request.clientGraceMs ?? DEFAULT_CLIENT_GRACE_MS;
      deadline = setTimeout(() => {
        channel?.close();
        finish({ deadlineHit: true });
      }, request.timeoutSeconds * 1000 + graceMs);
    }
    if (request.openTimeoutMs) {
      openTimer = setTimeout(() => finish({ connectionError: `no channel opened within ${request.openTimeoutMs} ms` }), request.openTimeoutMs);
    }
    const invocation = remoteInvocation(request.command, request);
    // ssh2 (1.x, Client#exec) reads the options' `env` when the server has confirmed the session channel, and sends
    // the exec request in the same tick: reading it marks the request as sent. The connection is then alive, so the
    // channel-open bound stops there (a slow host may take its time to start the command).
    const execOptions = Object.defineProperty({}, "env", {
      enumerable: true,
      get: () => {
        requestSent = true;
        if (openTimer) clearTimeout(openTimer);
        return undefined;
      },
    });
    client.exec(invocation.commandLine, execOptions, (error, opened) => {
      if (error) return finish({ connectionError: `exec request refused: ${error.message}` });
      if (finished) return void opened.close();
      if (openTimer) clearTimeout(openTimer);
      channelOpened = true;
      channel = opened;
      opened.on("data", (chunk: Buffer) => stdout.push(chunk));
      opened.stderr.on("data", (chunk: Buffer) => {
        stderr.push(chunk);
        if (!request.onStderrLine) return;
        // Split on the newline byte, so a character cut between two chunks stays whole.
        lines.pending = Buffer.concat([lines.pending, chunk]);
        for (let end = lines.pending.indexOf(10); end >= 0; end = lines.pending.indexOf(10)) {
          emitLine(lines.pending.subarray(0, end));
          lines.pending = lines.pending.subarray(end + 1);
        }
      });
      opened.on("exit", (code: number | null, signalName?: string) => {
        exitCode = code;
        signal = signalName ?? undefined;
      });
      opened.on("close", () => finish());
      // Always send EOF so scripts that read stdin do not wait forever.
      const stdin = request.stdin ?? "";
      opened.end(typeof stdin === "string" ? invocation.stdinPrefix + stdin : Buffer.concat([Buffer.from(invocation.stdinPrefix), stdin]));
    });
  });
}

export function openSftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => {
    client.sftp((error, sftp) => (error ? reject(new Error(`SFTP unavailable: ${error.message}`)) : resolve(sftp)));
  });
}

/** Dial, run `use`, always close the connection. */
export async function withSshSession<T>(
  connection: SshConnection, use: (session: SshSession) => Promise<T>, options?: DialOptions,
): Promise<T> {
  const session = await dialWithRetries(connection, options);
  try {
    return await use(session);
  } finally {
    session.client.end();
  }
}
