// Copies the host scripts (scripts/host/*.sh and their shared scripts/lib) to a host, one file per
// CopyToRemote. Why files and not a directory archive: copying a directory onto a path that already
// exists nests it one level deeper on the second run (scp semantics), while a file target is simply
// replaced; and a changed script re-copies only that file (asset hash).
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { connectionArgs, type SshTarget } from "./remote";

/** The repository's scripts/ directory. */
export const LOCAL_SCRIPTS_DIR = path.resolve(__dirname, "..", "scripts");

export interface HostScriptsArgs {
  target: SshTarget;
  /** Remote directory; scripts land in <dir>/host and <dir>/lib. */
  remoteDir: string;
  /** Script file names under scripts/host needed on this host. */
  scripts: string[];
  /** Override for tests; defaults to the repository's scripts/. */
  localDir?: string;
  /** Re-copy everything when these change (e.g. the instance id: a replaced host starts empty). */
  triggers?: pulumi.Input<unknown[]>;
}

export class HostScripts extends pulumi.ComponentResource {
  /** The copy resources; commands that run the scripts depend on them. */
  public readonly copies: command.remote.CopyToRemote[] = [];

  constructor(name: string, args: HostScriptsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:host:HostScripts", name, {}, opts);
    const local = args.localDir ?? LOCAL_SCRIPTS_DIR;
    const missing = args.scripts.filter((s) => !fs.existsSync(path.join(local, "host", s)));
    if (missing.length > 0) {
      throw new Error(`HostScripts ${name}: missing host script(s) ${missing.join(", ")} under ${path.join(local, "host")}`);
    }
    const libFiles = fs.readdirSync(path.join(local, "lib")).filter((f) => f.endsWith(".sh")).sort();
    const files = [...args.scripts.map((s) => `host/${s}`), ...libFiles.map((f) => `lib/${f}`)];
    const connection = connectionArgs(args.target);
    for (const rel of files) {
      const role = rel.replace(/\.sh$/, "").replace(/[^A-Za-z0-9]+/g, "-");
      this.copies.push(
        new command.remote.CopyToRemote(
          `${name}-${role}`,
          { connection, source: new pulumi.asset.FileAsset(path.join(local, rel)), remotePath: `${args.remoteDir}/${rel}`, triggers: args.triggers },
          { parent: this },
        ),
      );
    }
    this.registerOutputs({});
  }
}
