// npm run cost -- --stack <name> [--json] [--check] [--from-dir DIR]
// Prints a stack's phase price, cost to date, the month's forecast and its budget use.
// Verda credentials from VERDA_CLIENT_ID / VERDA_CLIENT_SECRET (VERDA_BASE_URL optional).
// --from-dir DIR reads <stack>.config.json / <stack>.outputs.json there instead of scripts/pulumi.
// --now ISO-TIME computes cost to date at that time (the simulator's clock in tests).
// --check exits 2 when the forecast is over budget (for scripts and CI).
import path from "node:path";
import { existsSync } from "node:fs";
import { collectCostReport, formatCostReport, readJsonFile, readStackConfig, readStackOutputs, parseConfigJson, verdaForMoney, type StackSource } from "../infra/money";

function usage(problem?: string): never {
  if (problem) console.error(`cost: ${problem}`);
  console.error("usage: npm run cost -- --stack <name> [--json] [--check] [--from-dir DIR] [--now ISO-TIME]");
  process.exit(problem ? 1 : 0);
}

function parseArgs(argv: string[]) {
  const args = { stack: "", json: false, check: false, fromDir: "", now: undefined as Date | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") args.stack = argv[++i] ?? usage("--stack needs a value");
    else if (a === "--json") args.json = true;
    else if (a === "--check") args.check = true;
    else if (a === "--from-dir") args.fromDir = argv[++i] ?? usage("--from-dir needs a value");
    else if (a === "--now") {
      args.now = new Date(argv[++i] ?? usage("--now needs a time"));
      if (Number.isNaN(args.now.getTime())) usage("--now must be an ISO time such as 2026-11-23T18:00:00Z");
    } else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (!args.stack) usage("--stack is required");
  return args;
}

function dirSource(dir: string): StackSource {
  const file = (stack: string, kind: string) => path.join(dir, `${stack}.${kind}.json`);
  return {
    config: (stack) => (existsSync(file(stack, "config")) ? parseConfigJson(JSON.stringify(readJsonFile(file(stack, "config")))) : undefined),
    outputs: (stack) => (existsSync(file(stack, "outputs")) ? (readJsonFile(file(stack, "outputs")) as Record<string, unknown>) : {}),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { client, api } = verdaForMoney({
    clientId: process.env.VERDA_CLIENT_ID ?? "",
    clientSecret: process.env.VERDA_CLIENT_SECRET ?? "",
    baseUrl: process.env.VERDA_BASE_URL,
  });
  const source = args.fromDir ? dirSource(args.fromDir) : { config: (s: string) => readStackConfig(s), outputs: (s: string) => readStackOutputs(s) };
  const report = await collectCostReport(args.stack, { source, api, client, now: args.now });
  console.log(args.json ? JSON.stringify(report, null, 2) : formatCostReport(report));
  if (args.check && report.budget.verdict === "over") process.exit(2);
}

main().catch((e: unknown) => {
  console.error(`cost: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
