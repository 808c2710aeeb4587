// npm run rescue -- --stack <day stack> [--instance-type CPU...] [--accept-shrink SET ...] [--yes] [--json] [--project-dir DIR]
// Backs up the scratch of a day stack whose instance is gone (spot eviction, credit exhausted,
// deleted in the console) through a short-lived CPU instance, verifies it in R2, then removes the
// gone instance and the resources that need it from the stack's state, so that
// `scripts/pulumi destroy --stack <day stack>` completes. See docs/rescue.md.
// Verda credentials: VERDA_CLIENT_ID / VERDA_CLIENT_SECRET (VERDA_BASE_URL optional).
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { editState, planRemovals, pulumiCli, readRevealedState, removeResources, rescueScratch, rescueSettings, rescueTarget, rescueVerda } from "../infra/rescue";

const USAGE = "usage: npm run rescue -- --stack <day stack> [--instance-type CPU.4V.16G] [--accept-shrink SET ...] [--yes] [--json] [--project-dir DIR]";

function usage(problem?: string): never {
  if (problem) console.error(`rescue: ${problem}`);
  console.error(USAGE);
  process.exit(problem ? 1 : 0);
}

function parseArgs(argv: string[]) {
  const args = { stack: "", instanceType: undefined as string | undefined, acceptShrink: [] as string[], yes: false, json: false, projectDir: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") args.stack = argv[++i] ?? usage("--stack needs a value");
    else if (a === "--instance-type") args.instanceType = argv[++i] ?? usage("--instance-type needs a value such as CPU.4V.16G");
    else if (a === "--accept-shrink") args.acceptShrink.push(argv[++i] ?? usage("--accept-shrink needs the set name exactly as the failed backup printed it"));
    else if (a === "--yes") args.yes = true;
    else if (a === "--json") args.json = true;
    else if (a === "--project-dir") args.projectDir = argv[++i] ?? usage("--project-dir needs a directory");
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (!args.stack) usage("--stack is required (the day stack whose instance is gone, e.g. workshop-day)");
  if (args.instanceType !== undefined && !/^CPU\.[A-Za-z0-9.]+$/.test(args.instanceType)) usage(`--instance-type ${args.instanceType}: use a CPU type such as CPU.4V.16G`);
  if (args.json && !args.yes) usage("--json needs --yes (no question can be asked)");
  return args;
}

async function ask(summary: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    console.error(`${summary}\nrescue: not a terminal; pass --yes to go ahead`);
    return false;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${summary}\nGo ahead? [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`rescue: interrupted (${signal}). A rescue instance may still be running with the scratch attached; the state was not edited. ` +
        `Run \`npm run rescue -- --stack ${args.stack}\` again: it deletes that instance first (OS volume only) and converges.`);
      process.exit(130);
    });
  }
  const clientId = process.env.VERDA_CLIENT_ID ?? "";
  const clientSecret = process.env.VERDA_CLIENT_SECRET ?? "";
  if (!clientId || !clientSecret) usage("VERDA_CLIENT_ID and VERDA_CLIENT_SECRET must be set (the Verda API credentials, as for npm run cost)");
  const cli = pulumiCli(args.projectDir);
  const log = (line: string) => console.error(line);
  const revealed = readRevealedState(cli, args.stack);
  const target = rescueTarget(revealed, args.stack);
  // The state edit is planned (and proven applicable) before anything is created.
  const planned = planRemovals(revealed, args.stack);
  removeResources(revealed, planned.map((r) => r.urn));
  log(`After a verified backup, the state edit will remove: ${planned.map((r) => r.urn.slice(r.urn.lastIndexOf("::") + 2)).join(", ")}`);
  const { paths, timeouts, shrink } = rescueSettings(cli, args.stack);
  const result = await rescueScratch(target, rescueVerda({ clientId, clientSecret, baseUrl: process.env.VERDA_BASE_URL }), {
    paths,
    timeouts,
    shrink: { tolerance: shrink.tolerance, accept: [...shrink.accept, ...args.acceptShrink] },
    instanceType: args.instanceType,
    waits: { pollMs: 2_000, timeoutMs: 15 * 60_000 },
    log,
    confirm: async (summary) => (args.yes ? (log(summary), true) : ask(summary)),
  });
  log(`backup verified in R2 (${result.seconds} s):\n${result.backupSummary}`);
  const edit = editState(cli, args.stack, revealed, path.resolve(__dirname, "../.comfyume/rescue"));
  const next = `scripts/pulumi destroy --stack ${args.stack}`;
  if (args.json) {
    console.log(JSON.stringify({ ...result, removedFromState: edit.removed, stateBackup: edit.backupFile, next }, null, 2));
    return;
  }
  console.log(`Rescued scratch ${result.scratchVolumeId}: inputs and outputs verified in R2; rescue instance ${result.rescueInstanceId} (${result.instanceType}) deleted.`);
  console.log(`Removed from the state of ${args.stack} (the previous state is saved in ${edit.backupFile}):`);
  for (const r of edit.removed) console.log(`  - ${r.urn}\n      ${r.why}`);
  console.log(`Next: ${next}`);
}

main().catch((e: unknown) => {
  console.error(`rescue: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
