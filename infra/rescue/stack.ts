// The day stack's state through the project's Pulumi CLI (scripts/pulumi): read it (secrets
// revealed in memory only), and — after a verified rescue — drop the resources that need the gone
// host, keeping an encrypted copy of the state as it was so the edit can be undone.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseConfigJson } from "../money/stack-io";
import type { RescuePaths } from "./remote";
import { planRemovals, removeResources, type Removal } from "./state-edit";
import { parseExport, resourcesOf, revealSecrets, type StackExport } from "./state";
import { REPO_ROOT } from "../repo-root";

export type PulumiCli = (args: string[], stdin?: string) => { status: number; stdout: string; stderr: string };



/** scripts/pulumi, optionally in another project directory (-C), never interactive. */
export function pulumiCli(projectDir?: string, env: NodeJS.ProcessEnv = process.env): PulumiCli {
  return (args, stdin) => {
    const r = spawnSync(path.join(REPO_ROOT, "scripts/pulumi"), [...(projectDir ? ["-C", projectDir] : []), ...args, "--non-interactive"], {
      encoding: "utf8", input: stdin ?? "", env, maxBuffer: 256 * 1024 * 1024, timeout: 300_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
}

function exportOf(cli: PulumiCli, stack: string, showSecrets: boolean): StackExport {
  const r = cli(["stack", "export", "--stack", stack, ...(showSecrets ? ["--show-secrets"] : [])]);
  // stderr may be printed; stdout (the state, with secrets) never is.
  if (r.status !== 0) throw new Error(`scripts/pulumi stack export --stack ${stack} failed (exit ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
  return parseExport(r.stdout, stack);
}

/** The state with every secret revealed: keep it in memory, never print or write it. */
export function readRevealedState(cli: PulumiCli, stack: string): StackExport {
  return revealSecrets(exportOf(cli, stack, true), `the state of ${stack}`) as StackExport;
}

export interface StateEditResult {
  removed: Removal[];
  /** The state before the edit (secrets encrypted), for `pulumi stack import --file`. */
  backupFile: string;
}

/**
 * Removes the resources that need the gone host. The removals are chosen on the revealed state
 * (hosts live in secret connections) and applied to a fresh ENCRYPTED export, so the imported
 * state never carries plaintext secrets.
 */
export function editState(cli: PulumiCli, stack: string, revealed: StackExport, backupDir: string): StateEditResult {
  const removed = planRemovals(revealed, stack);
  const encrypted = exportOf(cli, stack, false);
  const before = new Set(resourcesOf(revealed).map((r) => r.urn));
  const now = resourcesOf(encrypted).map((r) => r.urn);
  if (now.length !== before.size || now.some((u) => !before.has(u))) {
    throw new Error(`the state of ${stack} changed during the rescue (another pulumi run?); the backup in R2 stands, run the rescue again to edit the state`);
  }
  const edited = removeResources(encrypted, removed.map((r) => r.urn));
  mkdirSync(backupDir, { recursive: true });
  const backupFile = path.join(backupDir, `${stack}-before-rescue-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(backupFile, JSON.stringify(encrypted, null, 2), { mode: 0o600 });
  const r = cli(["stack", "import", "--stack", stack], JSON.stringify(edited));
  if (r.status !== 0) {
    throw new Error(`scripts/pulumi stack import --stack ${stack} failed (exit ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}; the state is unchanged (saved in ${backupFile})`);
  }
  return { removed, backupFile };
}

export interface RescueSettings {
  paths: RescuePaths;
  timeouts: { prepareSeconds: number; backupSeconds: number };
  shrink: { tolerance?: number; accept: string[] };
}

/** Non-secret settings from the stack's config (`pulumi config --json`), with the schema's defaults. */
export function rescueSettings(cli: PulumiCli, stack: string): RescueSettings {
  const r = cli(["config", "--stack", stack, "--json"]);
  if (r.status !== 0) throw new Error(`scripts/pulumi config --stack ${stack} failed (exit ${r.status}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
  const cfg = parseConfigJson(r.stdout);
  const paths = (cfg["comfyume:paths"] ?? {}) as { scriptsDir?: string; scratchMount?: string };
  const timeouts = (cfg["comfyume:timeouts"] ?? {}) as { mountSeconds?: number; backupSeconds?: number };
  const backup = (cfg["comfyume:backup"] ?? {}) as { shrinkTolerance?: number; acceptShrink?: string[] };
  return {
    paths: { scriptsDir: paths.scriptsDir ?? "/opt/comfyume", scratchMount: paths.scratchMount ?? "/mnt/scratch", hostEnv: (cfg["comfyume:hostEnv"] ?? {}) as Record<string, string> },
    timeouts: { prepareSeconds: Number(timeouts.mountSeconds ?? 600), backupSeconds: Number(timeouts.backupSeconds ?? 7200) },
    shrink: { tolerance: backup.shrinkTolerance === undefined ? undefined : Number(backup.shrinkTolerance), accept: backup.acceptShrink ?? [] },
  };
}
