// npm run preview:summary -- --stack <name> [--input preview.json] [--cost cost.json] [--output summary.md]
// Markdown summary of a Pulumi preview: data at risk first, counts, policy violations, errors, and the
// changes grouped by component. Without --input it runs `scripts/pulumi preview --json` itself.
import fs from "node:fs";
import { parseArgs } from "node:util";
import { parsePreview } from "./preview/parse";
import { renderSummary } from "./preview/render";
import { runPreview } from "./preview/run";

const USAGE = "usage: npm run preview:summary -- --stack <name> [--input <preview.json|->] [--cost <cost.json>] [--output <summary.md>]";

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: { stack: { type: "string" }, input: { type: "string" }, cost: { type: "string" }, output: { type: "string" }, help: { type: "boolean" } },
      strict: true,
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.stack) {
    console.error(`--stack is required\n${USAGE}`);
    return 2;
  }
  let previewStatus = 0;
  let text: string;
  if (values.input) {
    text = fs.readFileSync(values.input === "-" ? 0 : values.input, "utf8");
  } else {
    const run = runPreview(values.stack, process.cwd());
    previewStatus = run.status;
    text = run.output;
  }
  const cost = values.cost && fs.existsSync(values.cost) ? (JSON.parse(fs.readFileSync(values.cost, "utf8")) as unknown) : undefined;
  let markdown: string;
  try {
    markdown = renderSummary(parsePreview(text), { stack: values.stack, cost });
  } catch (e) {
    console.error(`preview:summary: ${(e as Error).message}`);
    return 2;
  }
  if (values.output) fs.writeFileSync(values.output, markdown);
  else process.stdout.write(markdown);
  // The summary is written either way; a failed preview (e.g. a policy violation) still fails the command.
  return previewStatus === 0 ? 0 : 1;
}

process.exitCode = main();
