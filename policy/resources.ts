// What the guardrails and the preview summary know about our resources: their type tokens, which
// of them hold data that a replacement or deletion would lose, and how to read a property that may
// still be unknown during a preview.

export const TYPES = {
  instance: "pulumi-nodejs:dynamic/verda:Instance",
  volume: "pulumi-nodejs:dynamic/verda:Volume",
  sshKey: "pulumi-nodejs:dynamic/verda:SshKey",
  startupScript: "pulumi-nodejs:dynamic/verda:StartupScript",
  remoteCommand: "pulumi-nodejs:dynamic/remote:Command",
  /** @pulumi/command's remote.Command; the components used it before our own ssh2 provider. */
  commandRemoteCommand: "command:remote:Command",
  r2Bucket: "cloudflare:index/r2Bucket:R2Bucket",
  melloServer: "hcloud:index/server:Server",
  gpuWorker: "comfyume:verda:GpuWorker",
  sharedFilesystem: "comfyume:verda:SharedFilesystem",
  mello: "comfyume:mello:Mello",
  backups: "comfyume:backups:Backups",
} as const;

/** The Volume `type` of the shared file system; anything else (default "NVMe") is a block scratch volume. */
export const SFS_VOLUME_TYPE = "NVMe_Shared";

export type DataRole = "sfs" | "scratch" | "r2-bucket" | "mello";

export const DATA_ROLE_LABELS: Record<DataRole, string> = {
  sfs: "shared file system (models, worker image, restore cache)",
  scratch: "scratch volume (user inputs and outputs)",
  "r2-bucket": "R2 backup bucket",
  mello: "mello server (frontends, Redis queue)",
};

/** Marks a value the engine does not know yet (preview). */
export const UNKNOWN: unique symbol = Symbol("unknown");
export type Maybe<T> = T | undefined | typeof UNKNOWN;

// The sentinel `pulumi preview --json` prints for an unknown value.
const UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * Reads `props[key]` whether it comes from @pulumi/policy (which throws UnknownValueError for an
 * unknown value during preview) or from preview JSON (which prints a sentinel string).
 */
export function readProp(props: Record<string, unknown> | undefined, key: string): unknown {
  if (!props) return undefined;
  let value: unknown;
  try {
    value = props[key];
  } catch (e) {
    if (e instanceof Error && e.name === "UnknownValueError") return UNKNOWN;
    if (e instanceof Error && /can't be known during preview/.test(e.message)) return UNKNOWN;
    throw e;
  }
  return value === UNKNOWN_SENTINEL ? UNKNOWN : value;
}

export function readString(props: Record<string, unknown> | undefined, key: string): Maybe<string> {
  const value = readProp(props, key);
  if (value === UNKNOWN) return UNKNOWN;
  return typeof value === "string" ? value : undefined;
}

export function readNumber(props: Record<string, unknown> | undefined, key: string): Maybe<number> {
  const value = readProp(props, key);
  if (value === UNKNOWN) return UNKNOWN;
  return typeof value === "number" ? value : undefined;
}

export const isInstance = (type: string): boolean => type === TYPES.instance;
export const isRemoteCommand = (type: string): boolean => type === TYPES.remoteCommand || type === TYPES.commandRemoteCommand;

/** "sfs" or "scratch" for a Verda volume; undefined while its type is unknown. */
export function volumeRole(props: Record<string, unknown> | undefined): "sfs" | "scratch" | undefined {
  const kind = readString(props, "type");
  if (kind === UNKNOWN) return undefined;
  return kind === SFS_VOLUME_TYPE ? "sfs" : "scratch";
}

/** The data a replacement or deletion of this resource would lose, if any. */
export function dataRoleOf(type: string, props: Record<string, unknown> | undefined): DataRole | undefined {
  switch (type) {
    case TYPES.volume:
      return volumeRole(props);
    case TYPES.r2Bucket:
      return "r2-bucket";
    case TYPES.melloServer:
      return "mello";
    default:
      return undefined;
  }
}

export interface ParsedUrn {
  stack: string;
  project: string;
  /** The resource's own type (last element of the qualified type). */
  type: string;
  /** Parent types, outermost first. */
  parentTypes: string[];
  name: string;
}

/** `urn:pulumi:<stack>::<project>::<parent$...$type>::<name>` */
export function parseUrn(urn: string): ParsedUrn | undefined {
  const match = /^urn:pulumi:([^:]+)::([^:]+)::(.+?)::(.*)$/s.exec(urn);
  if (!match) return undefined;
  const [, stack, project, qualifiedType, name] = match;
  const types = qualifiedType.split("$");
  return { stack, project, type: types[types.length - 1], parentTypes: types.slice(0, -1), name };
}
