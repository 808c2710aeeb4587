// Golden files: summaries of real `pulumi preview --json` output (recorded from the policy fixture
// on the real engine). UPDATE_GOLDEN=1 rewrites the expected Markdown after a deliberate change.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parsePreview } from "../../scripts/preview/parse";
import { renderSummary } from "../../scripts/preview/render";

const dir = path.join(__dirname, "fixtures/golden");

describe.each([
  ["replace-with-violations.events.jsonl", "workshop-day"],
  ["replace-with-violations.digest.json", "workshop-day"],
  ["delete-protected-sfs.events.jsonl", "workshop-day"],
])("golden summary of %s", (input, stack) => {
  it("matches the recorded Markdown", () => {
    const markdown = renderSummary(parsePreview(fs.readFileSync(path.join(dir, input), "utf8")), { stack });
    const expectedFile = path.join(dir, `${input.replace(/\.(events\.jsonl|digest\.json)$/, "")}.${input.includes("digest") ? "digest" : "events"}.md`);
    if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(expectedFile, markdown);
    expect(markdown).toBe(fs.readFileSync(expectedFile, "utf8"));
  });
});
