// Uploads the host scripts (scripts/host/*.sh and their shared scripts/lib) to a host as one
// RemoteFiles: one checksummed archive, one command, over the host's shared SSH connection, and only
// files whose content changed are sent (RemoteFiles compares sha256s). Contents are read from the repository when the program runs, so
// an edited script shows up in the next preview. Files, not a directory archive: each path is
// replaced atomically, nothing nests on a second run.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RemoteFiles } from "../infra/remote";
import { connectionArgs, type SshTarget } from "./remote";
import { repoPath } from "../infra/repo-root";

/** The repository's scripts/ directory. */
export const LOCAL_SCRIPTS_DIR = repoPath("scripts");

/** Scripts are run with `bash <file>`, but executable bits make them usable by hand on the host too. */
export const SCRIPT_MODE = 0o755;

export interface HostScriptsArgs {
  target: SshTarget;
  /** Remote directory; scripts land in <dir>/host and <dir>/lib. */
  remoteDir: string;
  /** Script file names under scripts/host needed on this host. */
  scripts: string[];
  /** Override for tests; defaults to the repository's scripts/. */
  localDir?: string;
  /** Re-upload everything when these change (e.g. the instance id: a replaced host starts empty). */
  triggers?: pulumi.Input<unknown[]>;
}

/** Remote path -> content for the named scripts plus every lib/*.sh. */
export function hostScriptFiles(localDir: string, remoteDir: string, scripts: string[]): Record<string, string> {
  const missing = scripts.filter((s) => !fs.existsSync(path.join(localDir, "host", s)));
  if (missing.length > 0) {
    throw new Error(`missing host script(s) ${missing.join(", ")} under ${path.join(localDir, "host")}`);
  }
  const libFiles = fs.readdirSync(path.join(localDir, "lib")).filter((f) => f.endsWith(".sh")).sort();
  const relative = [...scripts.map((s) => `host/${s}`), ...libFiles.map((f) => `lib/${f}`)];
  return Object.fromEntries(relative.map((rel) => [`${remoteDir}/${rel}`, fs.readFileSync(path.join(localDir, rel), "utf8")]));
}

export class HostScripts extends pulumi.ComponentResource {
  /** The upload; commands that run the scripts depend on it. */
  public readonly files: RemoteFiles;

  constructor(name: string, args: HostScriptsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:host:HostScripts", name, {}, opts);
    let files: Record<string, string>;
    try {
      files = hostScriptFiles(args.localDir ?? LOCAL_SCRIPTS_DIR, args.remoteDir, args.scripts);
    } catch (e) {
      throw new Error(`HostScripts ${name}: ${(e as Error).message}`);
    }
    this.files = new RemoteFiles(
      `${name}-files`,
      { connection: connectionArgs(args.target), files, mode: SCRIPT_MODE, triggers: args.triggers },
      { parent: this },
    );
    this.registerOutputs({ fileHashes: this.files.fileHashes });
  }
}
