// File uploads: as root over SFTP (mkdir -p, write-then-rename); as another user through `sudo -n` (the content on
// stdin, written to a temporary sibling and renamed), since the targets are usually root-owned.
import type { Client, SFTPWrapper } from "ssh2";
import { isRootUser, sudoRefusal, sudoRefusedMessage, writeFileScript } from "./remote-shell";
import { execOnce, openSftp } from "./ssh";

function call<T = void>(start: (done: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));
}

/** SFTP status 2 = no such file. */
function isMissing(error: unknown): boolean {
  return (error as { code?: number }).code === 2;
}

/** Creates `dir` and its missing parents (like `mkdir -p`). */
export async function ensureDirectory(sftp: SFTPWrapper, dir: string): Promise<void> {
  if (dir === "/" || dir === "") return;
  try {
    const stats = await call<import("ssh2").Stats>((done) => sftp.stat(dir, done));
    if (!stats.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    return;
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  await ensureDirectory(sftp, parentOf(dir));
  try {
    await call((done) => sftp.mkdir(dir, done));
  } catch (error) {
    // Another upload may have created it meanwhile; only a still-missing directory is an error.
    const stats = await call<import("ssh2").Stats>((done) => sftp.stat(dir, done)).catch(() => undefined);
    if (!stats?.isDirectory()) throw new Error(`cannot create directory ${dir}: ${(error as Error).message}`);
  }
}

export function parentOf(path: string): string {
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}

/**
 * Writes to a temporary sibling and renames it over the target, so a script that is running while it is
 * replaced keeps reading the old file instead of a half-written one.
 */
export async function uploadFile(sftp: SFTPWrapper, path: string, content: string, mode: number): Promise<void> {
  const { randomBytes } = require("crypto") as typeof import("crypto");
  const dir = parentOf(path);
  await ensureDirectory(sftp, dir);
  const base = path.slice(path.lastIndexOf("/") + 1);
  const temporary = `${dir === "/" ? "" : dir}/.${base}.upload-${randomBytes(4).toString("hex")}`;
  try {
    await call((done) => sftp.writeFile(temporary, content, { mode }, done));
    await call((done) => sftp.chmod(temporary, mode, done));
    await renameOver(sftp, temporary, path);
  } catch (error) {
    await call((done) => sftp.unlink(temporary, done)).catch(() => undefined);
    throw new Error(`upload of ${path} failed: ${(error as Error).message}`);
  }
}

async function renameOver(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  try {
    // OpenSSH's posix-rename replaces the target atomically.
    await call((done) => sftp.ext_openssh_rename(from, to, done));
    return;
  } catch (error) {
    if (!/not support/i.test((error as Error).message)) throw error;
  }
  // Plain SFTPv3 rename refuses to overwrite: remove the old file first.
  await call((done) => sftp.unlink(to, done)).catch((error: unknown) => {
    if (!isMissing(error)) throw error;
  });
  await call((done) => sftp.rename(from, to, done));
}

/** Writes text files with `mode`, parents created: SFTP as root, `sudo -n` for any other login user. */
export async function writeFiles(client: Client, user: string | undefined, files: Record<string, string>, mode: number): Promise<void> {
  if (isRootUser(user)) {
    const sftp = await openSftp(client);
    try {
      for (const [path, content] of Object.entries(files)) await uploadFile(sftp, path, content, mode);
    } finally {
      sftp.end();
    }
    return;
  }
  for (const [path, content] of Object.entries(files)) {
    const result = await execOnce(client, { command: writeFileScript(path, mode), stdin: content, user, timeoutSeconds: 300 });
    if (result.exitCode === 0) continue;
    const reason = sudoRefusal(result.exitCode, result.stderr);
    if (reason !== undefined) throw new Error(sudoRefusedMessage(user ?? "root", reason));
    const why = result.connectionError ?? (result.stderr.trim() || `exit code ${result.exitCode ?? result.signal}`);
    throw new Error(`upload of ${path} as root through sudo failed: ${why}`);
  }
}
