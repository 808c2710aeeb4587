// The command line sent to sshd for every remote command: an explicit PATH first, so what runs never depends
// on the host's login shell (/etc/environment, ~/.bashrc, a cloud image's profile), then the remote `timeout`.
// Pure functions only: they are inlined into the serialized dynamic providers.

/** Ubuntu's default PATH order. Host scripts may rely on it; the simulated cloud's shims live in /usr/local/sbin. */
export const REMOTE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Remote `timeout` sends TERM, then KILL this long after, to the whole process group. */
export const REMOTE_KILL_AFTER_SECONDS = 10;

/** POSIX single-quoting: safe for any text as one shell word. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs the command through the login shell (as sshd would) under coreutils `timeout`, which kills the
 * command's process group: a client that disconnects does not stop a remote process on its own.
 */
export function wrapWithRemoteTimeout(command: string, timeoutSeconds?: number): string {
  if (timeoutSeconds === undefined) return command;
  return `exec timeout --kill-after=${REMOTE_KILL_AFTER_SECONDS}s ${timeoutSeconds}s "\${SHELL:-/bin/sh}" -c ${shellQuote(command)}`;
}

/**
 * The exec request's command line: `export PATH=…` first, then the (timeout-wrapped) command. The shell that
 * `timeout` starts sets PATH again: bash run under sshd reads ~/.bashrc even when not interactive.
 */
export function remoteCommandLine(command: string, timeoutSeconds?: number): string {
  const withPath = (text: string) => `export PATH=${REMOTE_PATH}; ${text}`;
  return withPath(timeoutSeconds === undefined ? command : wrapWithRemoteTimeout(withPath(command), timeoutSeconds));
}
