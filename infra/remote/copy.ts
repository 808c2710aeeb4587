// RemoteFiles: upload a set of text files (one checksummed archive, infra/remote/archive.ts), as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/remote:Files). Like @pulumi/command CopyToRemote it never deletes remote files:
// removing the resource (or a path from `files`) leaves them in place.
import * as pulumi from "@pulumi/pulumi";
import { changedKeys, connectionFailures, type CheckFailure, type ConnectionArgs, type SshConnection, UNKNOWN } from "./connection";
import { ARCHIVE_REFUSED_MARKER, buildArchive, unpackCommand } from "./archive";
import { lastLines } from "./output";
import { execShared } from "./pool";
import { sudoRefusal, sudoRefusedMessage } from "./remote-shell";
import { PROVIDER_VERSION } from "../providers/version";
import { cacheableProvider } from "../provider-code-cache";

export interface RemoteFilesInputs {
  connection: SshConnection;
  /** Absolute remote path → file content (text). */
  files: Record<string, string>;
  /** Permission bits for every file, e.g. 0o755 for scripts. Default 0o644. */
  mode?: number;
  /** Any change replaces the resource (uploads everything again). */
  triggers?: unknown[];
  /** Set by the class (PROVIDER_VERSION): a new version updates the state's provider code, uploading nothing. */
  providerVersion?: string;
}

/** State keeps sha256 per path instead of the contents. */
export interface RemoteFilesOutputs extends Omit<RemoteFilesInputs, "files"> {
  fileHashes: Record<string, string>;
  presentedHostKey: string;
}

export type RemoteFilesArgs = {
  connection: pulumi.Input<ConnectionArgs>;
  files: pulumi.Input<Record<string, pulumi.Input<string>>>;
  mode?: pulumi.Input<number>;
  triggers?: pulumi.Input<unknown[]>;
};

export const DEFAULT_FILE_MODE = 0o644;
/** Deadline of one upload (a few hundred KiB of scripts). */
const UPLOAD_TIMEOUT_SECONDS = 300;
const COMPARED_KEYS = ["connection", "mode", "triggers", "fileHashes", "providerVersion"] as const;

export function sha256Hex(content: string): string {
  const { createHash } = require("crypto") as typeof import("crypto");
  return createHash("sha256").update(content, "utf8").digest("hex");
}

/** Unknown during preview stays unknown (so diff reports a change) instead of being hashed. */
export function hashFiles(files: Record<string, string> | string): Record<string, string> | string {
  if (files === UNKNOWN || typeof files !== "object") return files;
  const hashes: Record<string, string> = {};
  for (const path of Object.keys(files).sort()) hashes[path] = files[path] === UNKNOWN ? UNKNOWN : sha256Hex(files[path]);
  return hashes;
}

export function validateFilesInputs(news: RemoteFilesInputs): CheckFailure[] {
  const failures = connectionFailures(news.connection);
  const files = news.files as unknown;
  if (files === undefined || files === null || (files !== UNKNOWN && (typeof files !== "object" || Array.isArray(files)))) {
    failures.push({ property: "files", reason: "must be an object mapping absolute remote paths to contents" });
  } else if (files !== UNKNOWN) {
    for (const [path, content] of Object.entries(files as Record<string, unknown>)) {
      const segments = path.split("/");
      if (!path.startsWith("/") || path.endsWith("/") || segments.includes("..") || segments.includes(".")) {
        failures.push({ property: `files["${path}"]`, reason: "must be an absolute file path without . or .. segments" });
      }
      if (content !== UNKNOWN && typeof content !== "string") {
        failures.push({ property: `files["${path}"]`, reason: "content must be a string" });
      }
    }
  }
  const mode = news.mode as unknown;
  if (mode !== undefined && mode !== UNKNOWN && !(typeof mode === "number" && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
    failures.push({ property: "mode", reason: "must be an integer permission mode such as 0o644 or 0o755" });
  }
  return failures;
}

function comparable(values: { connection?: unknown; mode?: unknown; triggers?: unknown; fileHashes?: unknown; providerVersion?: unknown }) {
  return {
    connection: values.connection, mode: values.mode ?? DEFAULT_FILE_MODE, triggers: values.triggers, fileHashes: values.fileHashes,
    providerVersion: values.providerVersion ?? "",
  };
}

/** Paths whose content must be (re)written: all of them when the host or mode changed. */
export function pathsToUpload(olds: RemoteFilesOutputs | undefined, news: RemoteFilesInputs): string[] {
  const all = Object.keys(news.files).sort();
  if (!olds) return all;
  const hostOrModeChanged = changedKeys(["connection", "mode"], comparable(olds), comparable(news)).length > 0;
  if (hostOrModeChanged) return all;
  return all.filter((path) => olds.fileHashes?.[path] !== sha256Hex(news.files[path]));
}

/** Sends `paths` as one checksummed archive over the host's shared connection: one command, one transfer. */
export async function uploadArchive(connection: SshConnection, files: Record<string, string>, mode: number): Promise<string> {
  const archive = buildArchive(files);
  const { result, presentedHostKey } = await execShared(connection, {
    command: unpackCommand(archive, archive.bytes.length, mode),
    stdin: archive.bytes,
    user: connection.user,
    timeoutSeconds: UPLOAD_TIMEOUT_SECONDS,
  });
  if (result.exitCode === 0) return presentedHostKey;
  const reason = sudoRefusal(result.exitCode, result.stderr);
  if (reason !== undefined) throw new Error(sudoRefusedMessage(connection.user ?? "root", reason));
  const refused = result.stderr.split("\n").find((line) => line.startsWith(ARCHIVE_REFUSED_MARKER));
  if (refused) throw new Error(`${refused}. Fix: run the update again (the transfer was cut or altered on the way)`);
  const why = result.connectionError ? `lost its connection (${result.connectionError})` : lastLines(result.stderr.trim()) || `exit code ${result.exitCode ?? result.signal}`;
  throw new Error(`upload of ${archive.targets.length} file(s) failed: ${why}`);
}

async function upload(inputs: RemoteFilesInputs, paths: string[]): Promise<string> {
  if (paths.length === 0) return "";
  const files: Record<string, string> = {};
  for (const path of paths) files[path] = inputs.files[path];
  return uploadArchive(inputs.connection, files, inputs.mode ?? DEFAULT_FILE_MODE).catch((error: Error) => {
    throw new Error(`remote file upload to ${inputs.connection.host}: ${error.message}`);
  });
}

function outputsFor(inputs: RemoteFilesInputs, presentedHostKey: string): RemoteFilesOutputs {
  const outputs: RemoteFilesOutputs = {
    connection: inputs.connection, fileHashes: hashFiles(inputs.files) as Record<string, string>, presentedHostKey,
  };
  if (inputs.mode !== undefined) outputs.mode = inputs.mode;
  if (inputs.triggers !== undefined) outputs.triggers = inputs.triggers;
  if (inputs.providerVersion !== undefined) outputs.providerVersion = inputs.providerVersion;
  return outputs;
}

export const remoteFilesProvider: pulumi.dynamic.ResourceProvider<RemoteFilesInputs, RemoteFilesOutputs> = cacheableProvider("infra/remote/copy.ts#remoteFilesProvider", {
  async check(_olds, news) {
    return { inputs: news, failures: validateFilesInputs(news) };
  },

  async diff(_id, olds, news) {
    const changed = changedKeys(COMPARED_KEYS, comparable(olds), comparable({ ...news, fileHashes: hashFiles(news.files) }));
    return { changes: changed.length > 0, replaces: changed.includes("triggers") ? ["triggers"] : [] };
  },

  async create(inputs) {
    const { randomBytes } = require("crypto") as typeof import("crypto");
    const presentedHostKey = await upload(inputs, pathsToUpload(undefined, inputs));
    return { id: randomBytes(8).toString("hex"), outs: outputsFor(inputs, presentedHostKey) };
  },

  async update(_id, olds, news) {
    const presentedHostKey = await upload(news, pathsToUpload(olds, news));
    return { outs: outputsFor(news, presentedHostKey || olds.presentedHostKey || "") };
  },

  async delete() {
    // Deliberately nothing: like CopyToRemote, files stay on the host (scripts may still be needed there).
  },

  async read(id, props) {
    return { id, props };
  },
});

/**
 * Uploads text files (scripts, unit files, configs) with parent directories created. Re-uploads only files
 * whose content hash changed (all of them when `connection` or `mode` changed). `connection` is stored as
 * a secret; file contents are program inputs and so also stored in state inputs: do not put secrets in them.
 */
export class RemoteFiles extends pulumi.dynamic.Resource {
  declare readonly fileHashes: pulumi.Output<Record<string, string>>;
  declare readonly presentedHostKey: pulumi.Output<string>;

  constructor(name: string, args: RemoteFilesArgs, opts?: pulumi.CustomResourceOptions) {
    const props = {
      ...args, connection: pulumi.secret(args.connection), providerVersion: PROVIDER_VERSION, fileHashes: undefined, presentedHostKey: undefined,
    };
    const secretOutputs = { additionalSecretOutputs: ["connection"] };
    super(remoteFilesProvider, name, props, pulumi.mergeOptions(opts, secretOutputs), "remote", "Files");
  }
}
