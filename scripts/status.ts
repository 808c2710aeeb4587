// npm run status [-- --json] [--project-dir DIR] [--now ISO-TIME]
// One screen for the admin: per environment which layers are up, what Verda bills now and the
// period's cost against the budget, each backup set's last verified backup, the watchdog's next
// cutoff and the leftovers the sweep would delete. A source that fails shows as
// "unknown (<cause>; fix: ...)" and the rest still prints.
// Exit: 0 nothing needs attention, 1 something does (listed at the end), 2 bad arguments.
// Stacks through scripts/pulumi (its backend and passphrase defaults, or yours); Verda credentials
// from VERDA_CLIENT_ID / VERDA_CLIENT_SECRET (VERDA_BASE_URL) or the idle stack's verda:* config;
// R2 from the idle stack's outputs. No secret is ever printed.
import { performance } from "node:perf_hooks";
import { collectStatus } from "../infra/status/collect";
import { formatStatus, redact } from "../infra/status/format";
import { pulumiCliAsync } from "../infra/status/stacks";

function usage(problem?: string): never {
  if (problem) console.error(`status: ${problem}`);
  console.error("usage: npm run status [-- --json] [--project-dir DIR] [--now ISO-TIME]");
  process.exit(problem ? 2 : 0);
}

function parseArgs(argv: string[]) {
  const args = { json: false, projectDir: undefined as string | undefined, now: undefined as Date | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") args.json = true;
    else if (a === "--project-dir") args.projectDir = argv[++i] ?? usage("--project-dir needs a directory");
    else if (a === "--now") {
      args.now = new Date(argv[++i] ?? usage("--now needs a time"));
      if (Number.isNaN(args.now.getTime())) usage("--now must be an ISO time such as 2026-11-23T18:00:00Z");
    } else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { report, secrets } = await collectStatus({ cli: pulumiCliAsync(args.projectDir), env: process.env, now: args.now });
  // From process start: what the admin waits for.
  report.elapsedMs = Math.round(performance.now());
  const text = args.json ? JSON.stringify(report, null, 2) : formatStatus(report, { colour: !!process.stdout.isTTY && process.env.NO_COLOR === undefined });
  process.stdout.write(`${redact(text, secrets)}\n`);
  process.exitCode = report.attention.length > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(`status: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
