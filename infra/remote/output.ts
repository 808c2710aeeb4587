// Shaping remote command output for state and error messages: trimming, capping, redaction.
// Pure functions only (inlined into the serialized providers).

export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";
export const LOGGING_VALUES: readonly Logging[] = ["stdout", "stderr", "stdoutAndStderr", "none"];

/** Upper bound per stream kept in state: restore scripts can be chatty, state should stay small. */
export const MAX_STORED_OUTPUT_BYTES = 256 * 1024;
export const ERROR_TAIL_LINES = 40;
const REDACTED = "[redacted]";
/** Shorter fragments are too likely to match ordinary output to be worth redacting. */
const MIN_SECRET_FRAGMENT = 6;

/** Like @pulumi/command: one trailing newline is dropped. */
export function trimTrailingNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/** Keeps the end of long output (where errors are) and says how much was dropped. */
export function capOutput(text: string, maxBytes = MAX_STORED_OUTPUT_BYTES): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  const tail = Buffer.from(text).subarray(bytes - maxBytes).toString("utf8").replace(/^\uFFFD+/, "");
  return `[... ${bytes - Buffer.byteLength(tail)} bytes dropped ...]\n${tail}`;
}

export function lastLines(text: string, count = ERROR_TAIL_LINES): string {
  const lines = trimTrailingNewline(text).split("\n");
  return lines.slice(-count).join("\n");
}

/**
 * Fragments of secret inputs that must not be echoed back: the whole value, each line (so every line of a
 * multi-line secret such as a PEM key), the value part of KEY=VALUE / `export KEY=VALUE` / `KEY: VALUE` lines
 * (quotes removed) and the string values of JSON `"key": "value"` pairs.
 */
export function secretFragments(...secrets: (string | undefined)[]): string[] {
  const fragments = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    const candidates = [secret, trimTrailingNewline(secret)];
    for (const line of secret.split(/\r?\n/)) {
      candidates.push(line.trim());
      const assignment = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*[=:]\s*(.*)$/.exec(line);
      if (assignment) candidates.push(assignment[1].trim().replace(/,$/, "").replace(/^(["'])(.*)\1$/, "$2"));
      for (const pair of line.matchAll(/"[^"]*"\s*:\s*"((?:[^"\\]|\\.)*)"/g)) candidates.push(pair[1]);
    }
    for (const candidate of candidates) if (candidate.length >= MIN_SECRET_FRAGMENT) fragments.add(candidate);
  }
  // Longest first so a whole value is replaced before its pieces.
  return [...fragments].sort((a, b) => b.length - a.length);
}

export function redact(text: string, fragments: readonly string[]): string {
  let result = text;
  for (const fragment of fragments) result = result.split(fragment).join(REDACTED);
  return result;
}

/** What goes into the stdout/stderr outputs for a logging mode. */
export function visibleOutputs(logging: Logging | undefined, stdout: string, stderr: string): { stdout: string; stderr: string } {
  const mode = logging ?? "stdoutAndStderr";
  return {
    stdout: mode === "stdout" || mode === "stdoutAndStderr" ? stdout : "",
    stderr: mode === "stderr" || mode === "stdoutAndStderr" ? stderr : "",
  };
}
