// RemoteFiles' upload in one round: every file in one tar archive on the stdin of ONE command, which checks the
// archive's SHA-256 before touching anything, then puts each file in place through a temporary sibling renamed
// over the target (a script running while it is replaced keeps its old file). Pure functions: they are inlined
// into the serialized provider. Members are named by index ("0", "1", ...): the target paths live in the
// command, so nothing in the archive decides where a file lands.
import { shellQuote } from "./remote-shell";

/** Exit status of the unpack command when the archive's checksum does not match (EX_DATAERR). */
export const ARCHIVE_CHECKSUM_EXIT = 65;
/** First words of the line the unpack command prints when it refuses an archive. */
export const ARCHIVE_REFUSED_MARKER = "comfyume-upload: archive refused:";

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** One ustar header for a regular file. */
function tarHeader(name: string, size: number, mode: number): Buffer {
  const header = Buffer.alloc(BLOCK, 0);
  header.write(name, 0, 100, "utf8");
  header.write(octal(mode & 0o7777, 8), 100, 8, "ascii");
  header.write(octal(0, 8), 108, 8, "ascii");
  header.write(octal(0, 8), 116, 8, "ascii");
  header.write(octal(size, 12), 124, 12, "ascii");
  header.write(octal(0, 12), 136, 12, "ascii");
  header.write("        ", 148, 8, "ascii");
  header.write("0", 156, 1, "ascii");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + " ", 148, 8, "ascii");
  return header;
}

export interface FileArchive {
  bytes: Buffer;
  sha256: string;
  /** Remote path of each member, in member order ("0", "1", ...). */
  targets: string[];
}

/** A tar archive of `files` (remote path → text), members named by index, and its SHA-256. */
export function buildArchive(files: Record<string, string>): FileArchive {
  const { createHash } = require("crypto") as typeof import("crypto");
  const targets = Object.keys(files).sort();
  const parts: Buffer[] = [];
  targets.forEach((target, index) => {
    const content = Buffer.from(files[target], "utf8");
    parts.push(tarHeader(String(index), content.length, 0o600), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK, 0));
  });
  parts.push(Buffer.alloc(2 * BLOCK, 0));
  const bytes = Buffer.concat(parts);
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex"), targets };
}

/**
 * The command that receives the archive on stdin: checksum first (a short or altered archive changes nothing),
 * unpack into a private temporary directory, then each file: parents created, temporary sibling, mode, rename.
 * POSIX sh; needs coreutils, mktemp and tar (every Debian/Ubuntu image has them).
 */
export function unpackCommand(archive: Pick<FileArchive, "sha256" | "targets">, byteCount: number, mode: number): string {
  const put = archive.targets.map((target, index) => `put ${index} ${shellQuote(target)}`);
  return [
    "set -eu",
    'stage=$(mktemp -d "${TMPDIR:-/tmp}/comfyume-upload.XXXXXX")',
    "tmp=",
    'trap \'rm -rf "$stage"; [ -z "$tmp" ] || rm -f "$tmp"\' EXIT',
    'cat > "$stage/archive.tar"',
    'got=$(sha256sum "$stage/archive.tar" | cut -d " " -f 1)',
    `if [ "$got" != ${archive.sha256} ]; then`,
    `  echo "${ARCHIVE_REFUSED_MARKER} received $(wc -c < "$stage/archive.tar") of ${byteCount} bytes with sha256 $got, sent ${archive.sha256}; nothing was written" >&2`,
    `  exit ${ARCHIVE_CHECKSUM_EXIT}`,
    "fi",
    'mkdir "$stage/files"',
    'tar -xf "$stage/archive.tar" -C "$stage/files" --no-same-owner',
    "put() {",
    '  dir=${2%/*}; [ -n "$dir" ] || dir=/',
    '  mkdir -p "$dir"',
    '  tmp="$dir/.${2##*/}.upload-$$"',
    '  cp "$stage/files/$1" "$tmp"',
    `  chmod ${mode.toString(8)} "$tmp"`,
    '  mv -f "$tmp" "$2"',
    "  tmp=",
    "}",
    ...put,
  ].join("\n");
}
