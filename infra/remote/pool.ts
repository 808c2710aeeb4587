// One SSH connection per host, reused by every RemoteCommand and RemoteFiles of one `pulumi up`: the engine runs
// all dynamic resources of a run in one provider process, so a day's chain (upload, bootstrap, mount, restore, ...)
// dials each host once instead of once per step. Serialization-safe: the cache lives on a global symbol (every
// deserialized copy of the provider code finds the same one), ssh2 is required inside the dialer, no client is
// captured. Idle connections close after IDLE_CLOSE_MS so the provider process can exit.
import type { SshConnection } from "./connection";
import { DEFAULT_PER_DIAL_TIMEOUT_SECONDS, DEFAULT_PORT, DEFAULT_USER } from "./connection";
import { dialWithRetries, type DialOptions, execOnce, type ExecRequest, type ExecResult, loginKeyDescription, logToStderr, type SshSession } from "./ssh";

/** A connection nobody uses is closed this long after its last command. */
export const IDLE_CLOSE_MS = 3_000;
/** sshd's MaxSessions is 10: past this many concurrent channels another connection is dialled. */
export const MAX_CHANNELS_PER_CONNECTION = 8;

interface PooledConnection {
  key: string;
  /** The pinned host key ("type base64"), "" when dialled without a pin. */
  pin: string;
  /** Dial settings: only a dial still in flight is shared by equal settings alone. */
  dial: string;
  /** Resolves once dialled; rejects (and leaves the pool) when dialling failed. */
  ready: Promise<SshSession>;
  session?: SshSession;
  users: number;
  idleTimer?: NodeJS.Timeout;
  closed: boolean;
}

interface ConnectionPool {
  byKey: Map<string, PooledConnection[]>;
  /** Connections dialled by this process (for tests and logs). */
}

/** The process-wide pool; versioned so a provider copy with another entry shape never shares it. */
function connectionPool(): ConnectionPool {
  const slot = Symbol.for("comfyume.remote.ssh-connection-pool.v1");
  const holder = globalThis as unknown as Record<symbol, ConnectionPool | undefined>;
  let pool = holder[slot];
  if (!pool) {
    pool = { byKey: new Map() };
    holder[slot] = pool;
  }
  return pool;
}

/** Same host, port, user and login key: connections that may serve each other (see `usable`). */
export function poolKey(connection: SshConnection): string {
  return JSON.stringify([connection.host, connection.port ?? DEFAULT_PORT, connection.user ?? DEFAULT_USER, loginKeyDescription(connection.privateKey)]);
}

/** "type base64" of an authorized_keys line (the comment dropped), "" for none. */
function pinOf(hostKey: string | undefined): string {
  return (hostKey ?? "").trim().split(/\s+/).slice(0, 2).join(" ");
}

/**
 * An open connection serves a request with the same pin, or (first contact, then pinned steps) an unpinned one whose
 * host presented exactly the pinned key. A dial in flight serves only the same pin and dial settings.
 */
function usable(entry: PooledConnection, pin: string, dial: string): boolean {
  if (entry.closed || entry.users >= MAX_CHANNELS_PER_CONNECTION) return false;
  if (!entry.session) return entry.pin === pin && entry.dial === dial;
  return entry.pin === pin || (pin !== "" && entry.pin === "" && pinOf(entry.session.presentedHostKey) === pin);
}

function forget(pool: ConnectionPool, entry: PooledConnection): void {
  entry.closed = true;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  const list = pool.byKey.get(entry.key)?.filter((other) => other !== entry) ?? [];
  if (list.length > 0) pool.byKey.set(entry.key, list);
  else pool.byKey.delete(entry.key);
}

function dialInto(pool: ConnectionPool, key: string, connection: SshConnection, options?: DialOptions): PooledConnection {
  const dial = JSON.stringify([connection.dialErrorLimit ?? null, connection.perDialTimeout ?? null]);
  const entry: PooledConnection = { key, pin: pinOf(connection.hostKey), dial, ready: Promise.resolve() as unknown as Promise<SshSession>, users: 0, closed: false };
  entry.ready = dialWithRetries(connection, options).then(
    (session) => {
      entry.session = session;
      // A dropped connection leaves the pool at once: the next command dials again.
      session.client.on("close", () => forget(pool, entry));
      session.client.on("error", () => forget(pool, entry));
      return session;
    },
    (error: Error) => {
      forget(pool, entry);
      throw error;
    },
  );
  pool.byKey.set(key, [...(pool.byKey.get(key) ?? []), entry]);
  return entry;
}

export interface Lease {
  session: SshSession;
  /** True when the connection was already open (it may have died since without us noticing yet). */
  reused: boolean;
  /** Give the connection back; `discard` closes it (a client deadline fired, the connection looks dead). */
  release(discard?: boolean): void;
}

/** A connection to `connection`'s host: an open one with a free channel, else a new dial (shared while in flight). */
export async function acquire(connection: SshConnection, options?: DialOptions & { fresh?: boolean }): Promise<Lease> {
  const pool = connectionPool();
  const key = poolKey(connection);
  const dial = JSON.stringify([connection.dialErrorLimit ?? null, connection.perDialTimeout ?? null]);
  const open = options?.fresh ? undefined : (pool.byKey.get(key) ?? []).find((e) => usable(e, pinOf(connection.hostKey), dial));
  const entry = open ?? dialInto(pool, key, connection, options);
  const reused = open?.session !== undefined;
  entry.users += 1;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  entry.idleTimer = undefined;
  let session: SshSession;
  try {
    session = await entry.ready;
  } catch (error) {
    entry.users -= 1;
    throw error;
  }
  let released = false;
  return {
    session,
    reused,
    release(discard = false) {
      if (released) return;
      released = true;
      entry.users -= 1;
      // A discarded connection takes no new steps; it closes once the steps still running on it are done.
      if (discard) forget(pool, entry);
      if (entry.users > 0) return;
      if (entry.closed) {
        session.client.end();
        return;
      }
      entry.idleTimer = setTimeout(() => {
        forget(pool, entry);
        session.client.end();
      }, IDLE_CLOSE_MS);
      entry.idleTimer.unref();
    },
  };
}

export interface SharedSessionOptions<T> extends DialOptions {
  /** The value shows the connection was dead before the work started (e.g. no channel could be opened). */
  isStale?: (value: T) => boolean;
  /** The value shows the connection must not be reused (e.g. a client deadline fired on it). */
  isBroken?: (value: T) => boolean;
}

/**
 * Runs `use` on the host's shared connection. When a reused connection turns out dead before the work started
 * (`isStale`), it is closed and the host dialled once more (with the usual retries, host key pinning and
 * login-failure handling); work that had started is never repeated.
 */
export async function withSharedSession<T>(
  connection: SshConnection, use: (session: SshSession, reused: boolean) => Promise<T>, options: SharedSessionOptions<T> = {},
): Promise<T> {
  const first = await acquire(connection, options);
  let value: T;
  try {
    value = await use(first.session, first.reused);
  } catch (error) {
    first.release(true);
    throw error;
  }
  if (!(first.reused && options.isStale?.(value))) {
    first.release(options.isBroken?.(value) ?? false);
    return value;
  }
  first.release(true);
  (options.log ?? logToStderr)(`connection to ${connection.user ?? DEFAULT_USER}@${connection.host}:${connection.port ?? DEFAULT_PORT} was dropped; dialling again`);
  const second = await acquire(connection, { ...options, fresh: true });
  try {
    value = await use(second.session, false);
  } catch (error) {
    second.release(true);
    throw error;
  }
  second.release(options.isBroken?.(value) ?? false);
  return value;
}

/** Closes every pooled connection now (tests; nothing in the providers needs it). */
export function closePooledConnections(): void {
  const pool = connectionPool();
  for (const entries of [...pool.byKey.values()]) {
    for (const entry of entries) {
      forget(pool, entry);
      entry.session?.client.end();
    }
  }
}

/** Runs one command on the host's shared connection (see withSharedSession); the result as execOnce gives it. */
export async function execShared(
  connection: SshConnection, request: ExecRequest, options: DialOptions = {},
): Promise<{ result: ExecResult; presentedHostKey: string }> {
  const openSeconds = connection.perDialTimeout ?? DEFAULT_PER_DIAL_TIMEOUT_SECONDS;
  return withSharedSession(
    connection,
    // The channel-open bound only spots a reused connection that died silently; on a fresh one a slow host
    // must not fail a step whose command is already running.
    async (session, reused) => ({
      result: await execOnce(session.client, { ...request, openTimeoutMs: reused && openSeconds > 0 ? openSeconds * 1000 : undefined }),
      presentedHostKey: session.presentedHostKey,
    }),
    {
      ...options,
      // Dead before the exec request went out: safe to send it again. Once sent, the command may be running.
      isStale: ({ result }) => !result.requestSent && result.connectionError !== undefined,
      isBroken: ({ result }) => result.deadlineHit || result.connectionError !== undefined,
    },
  );
}
