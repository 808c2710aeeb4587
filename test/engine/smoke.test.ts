// Engine smoke test: the real Pulumi CLI, our language host, the dynamic-provider
// host and a local file backend, driven through scripts/pulumi like a user would.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";

const ready = pulumiToolchainReady();
if (!ready && process.env.CI) {
  throw new Error("CI must run the engine smoke test: the Pulumi toolchain is missing (run `npm run setup`)");
}

describe.runIf(ready)("real Pulumi engine", () => {
  let sandbox: PulumiSandbox;
  const ok = (args: string[], stdin?: string) => {
    const result = sandbox.run(args, { stdin });
    if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  const secretValue = "s3cr3t-value-that-must-not-leak";

  beforeAll(() => {
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/smoke"));
    ok(["stack", "init", "dev"]);
    ok(["config", "set", "--secret", "token", secretValue]);
  });
  afterAll(() => sandbox?.cleanup());

  it("prints its version through the wrapper", () => {
    expect(ok(["version"]).stdout.trim()).toMatch(/^v3\.\d+\.\d+/);
  });

  it("creates, updates, replaces and destroys a dynamic resource", () => {
    ok(["up", "--yes", "--skip-preview"]);
    expect(JSON.parse(ok(["stack", "output", "--json"]).stdout)).toMatchObject({ doubled: 42, token: "[secret]" });

    ok(["config", "set", "count", "5"]);
    const preview = JSON.parse(ok(["preview", "--json"]).stdout);
    const counterStep = preview.steps.find((s: { urn: string }) => s.urn.endsWith("::counter"));
    expect(counterStep.op).toBe("update");
    expect(preview.changeSummary).toMatchObject({ update: 1 });

    ok(["up", "--yes", "--skip-preview"]);
    expect(JSON.parse(ok(["stack", "output", "doubled", "--json"]).stdout)).toBe(10);

    ok(["config", "set", "label", "second"]);
    const replace = JSON.parse(ok(["preview", "--json"]).stdout);
    expect(replace.steps.map((s: { op: string }) => s.op)).toContain("replace");

    ok(["destroy", "--yes", "--skip-preview"]);
    const state = JSON.parse(ok(["stack", "export"]).stdout);
    expect(state.deployment.resources ?? []).toHaveLength(0);
  });

  it("keeps secrets encrypted in state and config files", () => {
    ok(["up", "--yes", "--skip-preview"]);
    const exported = ok(["stack", "export"]).stdout;
    expect(exported).not.toContain(secretValue);
    const stackFile = fs.readFileSync(path.join(sandbox.dir, "Pulumi.dev.yaml"), "utf8");
    expect(stackFile).toContain("secure:");
    expect(stackFile).not.toContain(secretValue);
    expect(JSON.parse(ok(["stack", "output", "token", "--show-secrets", "--json"]).stdout)).toBe(secretValue);
    ok(["destroy", "--yes", "--skip-preview"]);
  });

  it("parses the project's own Pulumi.yaml with the stack config directory", () => {
    const projectFile = fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8");
    expect(projectFile).toMatch(/stackConfigDir: stacks/);
    const listed = fs.readdirSync(path.join(repoRoot, "stacks")).sort();
    expect(listed).toEqual([
      "Pulumi.idle.yaml",
      "Pulumi.testing-day.yaml",
      "Pulumi.testing-month.yaml",
      "Pulumi.workshop-day.yaml",
      "Pulumi.workshop-month.yaml",
    ]);
  });
});
