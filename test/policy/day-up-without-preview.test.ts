// `scripts/pulumi up --yes --stack <day>` on a day that is down runs the program once (no separate preview), and
// what the preview guarded still fails before anything is created: a day without its backup hook stops in the
// program's pre-flight; a day that is up keeps its preview, so dropping its scratch stops there.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiSandbox, pulumiToolchainReady, type PulumiSandbox } from "../support/pulumi-cli";

const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the policy engine tests: the Pulumi toolchain is missing (run `npm run setup`)");

const REPO_ROOT = path.resolve(__dirname, "../..");
const ENGINE_TIMEOUT = 180_000;
const PREVIEW_BANNER = "Previewing update";
const fixtureEnv = (settings: Record<string, string> = {}) => ({
  GUARDED_REPO_ROOT: REPO_ROOT,
  ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [`GUARDED_${k}`, v])),
});

describe.runIf(ready)("day up without the separate preview", { timeout: ENGINE_TIMEOUT }, () => {
  let sandbox: PulumiSandbox;
  const ok = (args: string[], env: Record<string, string> = {}) => {
    const r = sandbox.run(args, { env });
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const resourceNames = (stack: string): string[] => {
    const state = JSON.parse(ok(["stack", "export", "--stack", stack]).stdout) as { deployment: { resources?: { urn: string; custom?: boolean }[] } };
    return (state.deployment.resources ?? []).filter((r) => r.custom).map((r) => r.urn.split("::").pop()!).filter((n) => n !== "default").sort();
  };
  const up = (stack: string, settings: Record<string, string> = {}) => sandbox.run(["up", "--yes", "--stack", stack], { env: fixtureEnv(settings) });

  beforeAll(() => {
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/guarded"));
    for (const stack of ["workshop-day", "workshop-day-2"]) ok(["stack", "init", stack]);
  });
  afterAll(() => sandbox?.cleanup());

  it("brings a day that is down up in one program run, and keeps the preview once it is up", () => {
    // Without --yes the admin is asked to confirm a plan: that needs the preview (non-interactive, pulumi then refuses).
    const asked = sandbox.run(["up", "--stack", "workshop-day"], { env: fixtureEnv() });
    expect(asked.status).not.toBe(0);
    expect(asked.stderr).not.toContain("up without the separate preview");
    expect(resourceNames("workshop-day")).toEqual([]);

    const first = up("workshop-day");
    expect(first.status, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).not.toContain(PREVIEW_BANNER);
    expect(first.stderr).toContain("workshop-day is down: up without the separate preview");
    expect(resourceNames("workshop-day")).toEqual(["sfs-volume", "worker-backup-before-delete", "worker-first-boot", "worker-instance", "worker-scratch"]);

    const again = up("workshop-day");
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(PREVIEW_BANNER);
  });

  it("stops a day program without the backup hook before anything is created", () => {
    for (const hook of ["none", "no-dependency"]) {
      const r = up("workshop-day-2", { hook });
      expect(r.status, `hook=${hook}`).not.toBe(0);
      expect(r.stdout).not.toContain(PREVIEW_BANNER);
      expect(resourceNames("workshop-day-2"), `hook=${hook}`).toEqual([]);
      expect(r.stdout).toContain("day pre-flight (stack workshop-day-2, up without a preview): nothing was created");
      expect(r.stdout).toContain("worker-instance: This day-stack instance has no backup-before-delete hook");
    }
  });

  it("stops a day that drops its scratch while up in the preview, before anything changes", () => {
    // workshop-day is up (the first case).
    const r = up("workshop-day", { scratch: "false" });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain(PREVIEW_BANNER);
    expect(r.stdout).toContain("scratch-not-removed-while-day-up");
    expect(resourceNames("workshop-day")).toContain("worker-scratch");
  });

  it("reports a scratch dropped by an explicit --skip-preview on a day that is up (the policy reads the state from before the update)", () => {
    // The second line: the stack policy runs after the steps, so it must judge against the state the update started from.
    const r = sandbox.run(["up", "--yes", "--skip-preview", "--stack", "workshop-day"], { env: fixtureEnv({ scratch: "false" }) });
    expect(r.status, r.stdout).not.toBe(0);
    expect(r.stdout).toContain("scratch-not-removed-while-day-up");
  });
});
