// backup.shrinkTolerance and backup.acceptShrink: typed, validated with the setting and the fix in the message,
// and exposed as cfg.backup.shrinkTolerance / cfg.backup.acceptShrink for the backup scripts'
// --shrink-tolerance / --accept-shrink flags.
import { describe, expect, it } from "vitest";
import { formatIssues, loadConfig, validateConfig, type RawConfig } from "../../infra/config";
import { DAY_SECRET_KEYS, dayValues, raw } from "../support/fixtures";

const day = (backup?: Record<string, unknown>) => raw("workshop-day", { ...dayValues(), ...(backup ? { "comfyume:backup": backup } : {}) }, DAY_SECRET_KEYS);

function issueFor(r: RawConfig, key: string) {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  const issue = result.issues.find((i) => i.key === key);
  expect(issue, formatIssues(r.stack, result.issues)).toBeDefined();
  return issue!;
}

describe("backup shrink settings", () => {
  it("default to a tolerance of 0.5 and no accepted sets", () => {
    const cfg = loadConfig(day());
    expect(cfg.backup).toMatchObject({ shrinkTolerance: 0.5, acceptShrink: [] });
  });

  it("accept a fraction in [0, 1] (also as the string the CLI may store) and a list of set names", () => {
    for (const [given, expected] of [[0, 0], [1, 1], [0.25, 0.25], ["0.8", 0.8]] as const) {
      expect(loadConfig(day({ shrinkTolerance: given })).backup.shrinkTolerance).toBe(expected);
    }
    const cfg = loadConfig(day({ acceptShrink: ["models", "scratch/inputs"] }));
    expect(cfg.backup.acceptShrink).toEqual(["models", "scratch/inputs"]);
  });

  it.each([[1.5], [-0.1], ["half"], [true]])("refuse shrinkTolerance %j, naming the setting and the fix", (value) => {
    const issue = issueFor(day({ shrinkTolerance: value }), "comfyume:backup.shrinkTolerance");
    expect(issue.problem).toMatch(/between 0 and 1/);
    expect(issue.fix).toBe("scripts/pulumi config set --path 'comfyume:backup.shrinkTolerance' 0.5 --stack workshop-day");
  });

  it("refuse acceptShrink that is not a list of set names", () => {
    const single = issueFor(day({ acceptShrink: "models" }), "comfyume:backup.acceptShrink");
    expect(single.problem).toMatch(/list of backup set names/);
    expect(single.fix).toBe(
      "scripts/pulumi config rm --path 'comfyume:backup.acceptShrink' --stack workshop-day && " +
        "scripts/pulumi config set --path 'comfyume:backup.acceptShrink[0]' <set name from the failure message> --stack workshop-day",
    );
    const blank = issueFor(day({ acceptShrink: ["models", " "] }), "comfyume:backup.acceptShrink[1]");
    expect(blank.problem).toMatch(/set name/);
  });
});
