// npm run sweep [-- --delete [--permanent]] [--json] [--owned-from FILE ...] [--stacks a,b]
// Lists billed Verda leftovers that no stack owns (stray instances, detached volumes, volumes in
// trash) with their monthly cost; removes them only with --delete. Owned ids come from
// `scripts/pulumi stack export` of every stack named after a phase (idle, <env>-month, <env>-day, any environment), or from --owned-from files
// (a stack export, or a JSON array of ids). Verda credentials: VERDA_CLIENT_ID / VERDA_CLIENT_SECRET.
import {
  findLeftovers,
  formatMoney,
  idsInStackExport,
  leftoversTotalPerMonth,
  loadPriceBook,
  ownedIdsFromStacks,
  readJsonFile,
  removeLeftovers,
  verdaForMoney,
  type OwnedIds,
} from "../infra/money";
import { renderTable } from "../infra/money/table";

function usage(problem?: string): never {
  if (problem) console.error(`sweep: ${problem}`);
  console.error("usage: npm run sweep [-- --delete [--permanent]] [--json] [--owned-from FILE ...] [--stacks a,b]");
  process.exit(problem ? 1 : 0);
}

function parseArgs(argv: string[]) {
  const args = { delete: false, permanent: false, json: false, ownedFrom: [] as string[], stacks: undefined as string[] | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--delete") args.delete = true;
    else if (a === "--permanent") args.permanent = true;
    else if (a === "--json") args.json = true;
    else if (a === "--owned-from") args.ownedFrom.push(argv[++i] ?? usage("--owned-from needs a file"));
    else if (a === "--stacks") args.stacks = (argv[++i] ?? usage("--stacks needs a list")).split(",").filter(Boolean);
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (args.permanent && !args.delete) usage("--permanent only goes with --delete");
  return args;
}

function ownedFromFiles(files: string[]): OwnedIds {
  const owned: OwnedIds = { ids: new Set(), stacks: [], unreadable: [] };
  for (const file of files) {
    const data = readJsonFile(file);
    const ids = Array.isArray(data) ? data.map((x) => String(x).toLowerCase()) : [...idsInStackExport(data)];
    ids.forEach((id) => owned.ids.add(id));
    owned.stacks.push(file);
  }
  return owned;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const owned = args.ownedFrom.length > 0 ? ownedFromFiles(args.ownedFrom) : ownedIdsFromStacks(args.stacks);
  const { client, api } = verdaForMoney({ clientId: process.env.VERDA_CLIENT_ID ?? "", clientSecret: process.env.VERDA_CLIENT_SECRET ?? "", baseUrl: process.env.VERDA_BASE_URL });
  const balance = await api.balance();
  const book = await loadPriceBook(api, balance.currency);
  const leftovers = findLeftovers({ instances: await api.instances(), volumes: await api.volumes(), trash: await api.trash(), owned: owned.ids, book });
  const m = (n: number) => formatMoney(n, book.currency);

  // Deleting with an unreadable (or no) stack state could take a stack's resources for leftovers.
  if (args.delete && (owned.unreadable.length > 0 || owned.stacks.length === 0)) {
    console.error(`sweep: refusing to delete: ${owned.stacks.length === 0 ? "no stack state was read" : `cannot read the state of ${owned.unreadable.join(", ")}`}; nothing deleted`);
    process.exit(1);
  }
  const actions = args.delete ? await removeLeftovers(client, leftovers, { owned: owned.ids, permanent: args.permanent }) : [];
  const total = leftoversTotalPerMonth(leftovers);

  if (args.json) {
    console.log(JSON.stringify({ currency: book.currency, ownedFrom: owned.stacks, leftovers, totalPerMonth: total, actions }, null, 2));
  } else {
    console.log(`owned ids from: ${owned.stacks.join(", ") || "(none)"} (${owned.ids.size} ids)`);
    if (leftovers.length === 0) console.log("no billed leftovers: every Verda resource belongs to a stack");
    else {
      const done = new Map(actions.map((a) => [a.leftover.id, `${a.action}${a.note ? ` (${a.note})` : ""}`]));
      console.log(
        renderTable(
          ["kind", "name", "id", "detail", "since", "per month", ...(args.delete ? ["action"] : [])],
          leftovers.map((l) => [l.kind, l.name, l.id, l.detail, l.createdAt.replace(/\.\d+Z$/, "Z"), m(l.perMonth), ...(args.delete ? [done.get(l.id) ?? "-"] : [])]),
          [5],
        ),
      );
      console.log(`\n${leftovers.length} leftover(s) billing ${m(total)} a month.`);
      if (!args.delete) console.log("Nothing deleted. Re-run with --delete (to trash, 96 h to restore) or --delete --permanent.");
      else {
        const count = (what: string) => actions.filter((a) => a.action === what).length;
        console.log(`Summary: ${count("deleted")} deleted, ${count("moved to trash")} moved to trash, ${count("skipped")} skipped, ${count("failed")} failed.`);
      }
    }
  }
  if (actions.some((a) => a.action === "failed")) process.exit(1);
}

main().catch((e: unknown) => {
  console.error(`sweep: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
