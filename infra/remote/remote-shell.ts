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

/** When the login user is not root, commands run as root through `sudo -n` (cloud images' default user). */
export function isRootUser(user: string | undefined): boolean {
  return user === undefined || user === "root";
}

/** First words of the line the sudo pre-check prints when `sudo -n` cannot run (needs a password, no rule, absent). */
export const SUDO_REFUSED_MARKER = "comfyume-remote: sudo -n refused:";
/** Exit status of the sudo pre-check (126: "cannot execute"), together with the marker on stderr. */
export const SUDO_REFUSED_EXIT = 126;

export interface RemoteInvocation {
  /** The exec request's command line: never the command's own text for sudo, never secrets. */
  commandLine: string;
  /** Sent on stdin before the caller's stdin (the script, for `sudo -n bash -s`). */
  stdinPrefix: string;
}

/**
 * As root: `export PATH=…; <command>` (under `timeout` when asked). As another user: a pre-check that
 * `sudo -n` works (else the marker and sudo's reason, exit 126), then `sudo -n [timeout …] /bin/bash -s` with the
 * command as ONE stdin line (`eval '<command>'; exit $?`): bash reads stdin a byte at a time from a pipe, so the
 * command's own stdin reads (the secrets) start right after that line.
 */
export function remoteInvocation(command: string, opts: { user?: string; timeoutSeconds?: number }): RemoteInvocation {
  if (isRootUser(opts.user)) return { commandLine: remoteCommandLine(command, opts.timeoutSeconds), stdinPrefix: "" };
  const timeout = opts.timeoutSeconds === undefined ? "" : `timeout --kill-after=${REMOTE_KILL_AFTER_SECONDS}s ${opts.timeoutSeconds}s `;
  const refused = (reason: string) => `{ echo "${SUDO_REFUSED_MARKER} ${reason}" >&2; exit ${SUDO_REFUSED_EXIT}; }`;
  const commandLine = [
    `export PATH=${REMOTE_PATH}`,
    `command -v sudo >/dev/null 2>&1 || ${refused("sudo is not installed")}`,
    `sudo -n true </dev/null >/dev/null 2>&1 || ${refused('$(sudo -n true 2>&1 </dev/null | head -n 1)')}`,
    `exec sudo -n ${timeout}/bin/bash -s`,
  ].join("; ");
  return { commandLine, stdinPrefix: `export PATH=${REMOTE_PATH}; eval ${shellQuote(command)}; exit $?\n` };
}

/** sudo's reason when the pre-check refused, e.g. "sudo: a password is required"; undefined otherwise. */
export function sudoRefusal(exitCode: number | null, stderr: string): string | undefined {
  if (exitCode !== SUDO_REFUSED_EXIT) return undefined;
  const line = stderr.split("\n").find((text) => text.startsWith(SUDO_REFUSED_MARKER));
  return line === undefined ? undefined : line.slice(SUDO_REFUSED_MARKER.length).trim();
}

/** The fix for a refused sudo, naming the user. */
export function sudoRefusedMessage(user: string, reason: string): string {
  return `user "${user}" cannot run commands as root: sudo -n refused (${reason}). Fix: give "${user}" passwordless ` +
    `sudo (e.g. "${user} ALL=(ALL) NOPASSWD:ALL" in /etc/sudoers.d/, as cloud images do for their default user) or ` +
    "connect as root";
}
