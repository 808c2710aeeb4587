// Which Pulumi command is running this program. `pulumi destroy --run-program` runs the program too, and the
// engine tells it nothing about the destroy (the language host's RunRequest has no such field, and the CLI
// sets no environment variable for it), so the program asks its own ancestry: the `pulumi` process that
// started the language host, and its subcommand. scripts/pulumi also exports COMFYUME_PULUMI_COMMAND.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

/** Global flags of the CLI that take their value as the next argument (the subcommand comes after them). */
const GLOBAL_FLAGS_WITH_VALUE = ["-C", "--cwd", "--color", "--tracing", "--tracing-header", "--profiling", "--otel-traces", "--memprofilerate", "-v", "--verbose"];
/** `down` is the CLI's alias of `destroy`. */
const DESTROY_COMMANDS = ["destroy", "down"];
/** Enough for program -> (shell) -> language host -> (shell) -> pulumi, with room to spare. */
const MAX_ANCESTORS = 12;

/** The subcommand in a `pulumi` argument list (without argv[0]): the first word that is not a flag or a flag's value. */
export function subcommandOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (GLOBAL_FLAGS_WITH_VALUE.includes(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith("-")) return arg;
  }
  return undefined;
}

export interface ProcessInfo {
  argv: string[];
  ppid: number;
}

/** Linux: /proc; elsewhere: `ps` (its argument list is space-joined, which is enough to find a subcommand). */
export function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return { argv, ppid };
  } catch {
    // No /proc (macOS): fall through to ps.
  }
  try {
    const line = execFileSync("ps", ["-o", "ppid=", "-o", "args=", "-p", String(pid)], { encoding: "utf8", timeout: 5000 }).trim();
    const [ppid, ...argv] = line.split(/\s+/);
    return { argv, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** The subcommand of the nearest `pulumi` process above `pid`, or undefined when there is none. */
export function commandFromAncestry(pid: number, read: (pid: number) => ProcessInfo | undefined = readProcess): string | undefined {
  let current = pid;
  for (let depth = 0; depth < MAX_ANCESTORS && current > 1; depth++) {
    const info = read(current);
    if (!info || info.argv.length === 0) return undefined;
    if (basename(info.argv[0]) === "pulumi") return subcommandOf(info.argv.slice(1)) ?? "";
    current = info.ppid;
  }
  return undefined;
}

/** The running Pulumi subcommand: the CLI in our ancestry decides; else the wrapper's COMFYUME_PULUMI_COMMAND. */
export function pulumiCommand(env: NodeJS.ProcessEnv = process.env, ancestry: () => string | undefined = () => commandFromAncestry(process.ppid)): string | undefined {
  return ancestry() ?? (env.COMFYUME_PULUMI_COMMAND || undefined);
}

/** True when this program runs under `pulumi destroy` (which runs it only with --run-program). */
export function isDestroyCommand(command: string | undefined): boolean {
  return command !== undefined && DESTROY_COMMANDS.includes(command);
}
