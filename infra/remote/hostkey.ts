// SSH host keys in the two shapes people handle: the authorized_keys line ("ssh-ed25519 AAAA... comment")
// that gets pinned in config, and the raw key blob the server presents during the handshake.
// Pure functions only: they are inlined into the serialized dynamic providers.

export interface PublicKeyBlob {
  /** Key type as written in the blob, e.g. "ssh-ed25519". */
  type: string;
  blob: Buffer;
}

/** Parses "type base64 [comment]"; returns an error text (never throws) so check() can report it. */
export function parseAuthorizedKey(line: string): PublicKeyBlob | string {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2 || fields[0] === "") return 'expected authorized_keys format: "<type> <base64> [comment]"';
  const [type, base64] = fields;
  if (/^(ssh|ecdsa|sk)-/.test(base64)) return 'this looks like a known_hosts line: drop the leading host field';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return "the key part is not base64";
  const blob = Buffer.from(base64, "base64");
  const embeddedType = keyTypeOfBlob(blob);
  if (embeddedType === undefined) return "the key blob is malformed";
  if (embeddedType !== type) return `the key says "${type}" but its blob holds a "${embeddedType}" key`;
  const { utils } = require("ssh2") as typeof import("ssh2");
  if (utils.parseKey(`${type} ${base64}`) instanceof Error) return "the key blob is malformed";
  return { type, blob };
}

/** The first field of an SSH public key blob is its type name (uint32 length + bytes). */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  return blob.subarray(4, 4 + length).toString("latin1");
}

/** OpenSSH-style fingerprint: "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprintSha256(blob: Buffer): string {
  const { createHash } = require("crypto") as typeof import("crypto");
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The authorized_keys line (without comment) for a presented key blob: pin this as `hostKey`. */
export function authorizedKeyFromBlob(blob: Buffer): string {
  return `${keyTypeOfBlob(blob) ?? "unknown"} ${blob.toString("base64")}`;
}

/**
 * Host key algorithms to ask the server for so that it presents the pinned key: OpenSSH offers ed25519 first,
 * so without this an ECDSA or RSA pin always "mismatches". An RSA key signs with SHA-2 (rsa-sha2-512/256)
 * on current servers and with SHA-1 (ssh-rsa) on old ones: same key, so all three are asked for.
 */
export function hostKeyAlgorithmsFor(keyType: string): string[] {
  if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [keyType];
}
