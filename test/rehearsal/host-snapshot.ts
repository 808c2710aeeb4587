// "Nothing written outside the simulated machines": a snapshot of this (build) machine's own
// directories — every entry's type, size, mtime and symlink target, never following a link or
// crossing into another filesystem — taken before and after a run, and the difference between them.
import * as fs from "node:fs";
import * as path from "node:path";

/** The build machine's directories a simulated host must never write to (issue 12). */
export const BUILD_MACHINE_DIRS = ["/home", "/etc", "/mnt", "/opt"];

export type Snapshot = Map<string, string>;

function describeEntry(file: string, st: fs.Stats): string {
  if (st.isSymbolicLink()) return `link -> ${fs.readlinkSync(file)}`;
  const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
  // A directory's size is its entry table's; its mtime changes when an entry is added or removed,
  // even one removed again before the second snapshot (a temporary file left no other trace).
  return `${type} ${st.size} bytes, mtime ${st.mtime.toISOString()}`;
}

/** Every path under `roots` (the roots included). A root that does not exist is recorded as such. */
export function snapshot(roots: string[]): Snapshot {
  const out: Snapshot = new Map();
  const walk = (file: string, dev: number | undefined) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      out.set(file, "absent");
      return;
    }
    out.set(file, describeEntry(file, st));
    // Another filesystem mounted here is not this machine's disk under that root (-xdev, as find).
    if (!st.isDirectory() || (dev !== undefined && st.dev !== dev)) return;
    let names: string[];
    try {
      names = fs.readdirSync(file);
    } catch (e) {
      out.set(file, `${out.get(file)} (unreadable: ${(e as NodeJS.ErrnoException).code})`);
      return;
    }
    for (const name of names.sort()) walk(path.join(file, name), st.dev);
  };
  for (const root of roots) walk(root, undefined);
  return out;
}

/**
 * The paths created, removed or changed between two snapshots, one line each
 * ("created /home/dev/x: file 12 bytes, ...", "changed /etc/y: <before> => <after>"), sorted.
 * `ignore` leaves out paths the caller has a stated reason to expect to change.
 */
export function snapshotDiff(before: Snapshot, after: Snapshot, ignore: (file: string) => boolean = () => false): string[] {
  const lines: string[] = [];
  for (const [file, now] of after) {
    if (ignore(file)) continue;
    const was = before.get(file);
    if (was === undefined) lines.push(`created ${file}: ${now}`);
    else if (was !== now) lines.push(`changed ${file}: ${was} => ${now}`);
  }
  for (const file of before.keys()) if (!after.has(file) && !ignore(file)) lines.push(`removed ${file}`);
  return lines.sort((a, b) => a.slice(a.indexOf(" ")).localeCompare(b.slice(b.indexOf(" "))));
}
