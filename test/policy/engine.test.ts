// The policy pack through the real engine: `scripts/pulumi preview|up` applies policy/ to a fixture
// program with comfyume's type tokens, passes a compliant day stack and blocks every guardrail.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePreview } from "../../scripts/preview/parse";
import { pulumiSandbox, pulumiToolchainReady, type PulumiSandbox } from "../support/pulumi-cli";

const ready = pulumiToolchainReady();
if (!ready && process.env.CI) throw new Error("CI must run the policy engine tests: the Pulumi toolchain is missing (run `npm run setup`)");

// Streaming JSON is the preview output that carries policy events.
const STREAMING = { PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true" };
const fixtureEnv = (settings: Record<string, string>) => Object.fromEntries(Object.entries(settings).map(([k, v]) => [`GUARDED_${k}`, v]));
// Each case is one or two CLI runs (~3-5 s alone); the margin is for a busy machine.
const ENGINE_TIMEOUT = 180_000;

describe.runIf(ready)("policy pack on the real engine", { timeout: ENGINE_TIMEOUT }, () => {
  let sandbox: PulumiSandbox;
  const ok = (args: string[]) => {
    const r = sandbox.run(args);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** Preview with fixture settings as GUARDED_* variables; returns its status and reported policies by resource. */
  const previewWith = (stack: string, settings: Record<string, string> = {}) => {
    const r = sandbox.run(["preview", "--json", "--stack", stack], { env: { ...STREAMING, ...fixtureEnv(settings) } });
    const data = parsePreview(r.stdout);
    const violations = data.policyViolations.map((v) => `${v.policy} @ ${v.urn?.split("::").pop()}`).sort();
    return { status: r.status, violations, data };
  };

  beforeAll(() => {
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/guarded"));
    ok(["stack", "init", "workshop-day"]);
    ok(["stack", "init", "idle"]);
  });
  afterAll(() => sandbox?.cleanup());

  it("passes a compliant day stack and brings it up", () => {
    const preview = previewWith("workshop-day");
    expect(preview.violations).toEqual([]);
    expect(preview.status).toBe(0);
    expect(preview.data.policyEventsSeen).toBe(true);
    ok(["up", "--yes", "--skip-preview", "--stack", "workshop-day"]);
  });

  it("blocks a missing backup hook, a disallowed instance type and a secret in the startup script", () => {
    const preview = previewWith("workshop-day", {
      hook: "no-dependency",
      instanceType: "8H100.80S.176V",
      startupScript: "#!/bin/sh\nexport HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\n",
    });
    expect(preview.status).not.toBe(0);
    expect(preview.violations).toEqual([
      "day-instance-backup-hook @ worker-instance",
      "instance-type-allow-list @ worker-instance",
      "startup-script-no-secrets @ worker-first-boot",
    ]);
    const secretMessage = preview.data.policyViolations.find((v) => v.policy === "startup-script-no-secrets")?.message;
    expect(secretMessage).toMatch(/Hugging Face token on line 2/);
    expect(secretMessage).not.toContain("hf_abcdefghij"); // names the kind of secret, never the value
  });

  it("blocks an unprotected SFS and an unprotected R2 bucket", () => {
    const preview = previewWith("workshop-day", { sfsProtect: "false", bucketProtect: "false" });
    expect(preview.status).not.toBe(0);
    expect(preview.violations).toEqual(["data-resources-protected @ models-bucket", "data-resources-protected @ sfs-volume"]);
  });

  it("blocks replacing the scratch volume while the day stack is up, in preview and in up", () => {
    const preview = previewWith("workshop-day", { scratchLocation: "FIN-02" });
    expect(preview.status).not.toBe(0);
    expect(preview.violations).toEqual(["scratch-not-replaced-while-day-up @ worker-scratch"]);
    expect(preview.data.changes.find((c) => c.urn.endsWith("::worker-scratch"))?.kind).toBe("replace");

    // Without a preview the resource check still runs before the step: the volume stays.
    const up = sandbox.run(["up", "--yes", "--skip-preview", "--stack", "workshop-day"], { env: fixtureEnv({ scratchLocation: "FIN-02" }) });
    expect(up.status).not.toBe(0);
    expect(up.stdout).toContain("scratch-not-replaced-while-day-up");
    const state = JSON.parse(ok(["stack", "export", "--stack", "workshop-day"]).stdout);
    const scratch = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::worker-scratch"));
    expect(scratch.inputs.locationCode).toBe("FIN-01");
  });

  it("blocks removing the scratch volume from a day stack that is up", () => {
    const preview = previewWith("workshop-day", { scratch: "false" });
    expect(preview.status).not.toBe(0);
    expect(preview.violations).toEqual(["scratch-not-removed-while-day-up @ guarded-workshop-day"]);
  });

  it("blocks a Verda instance in idle", () => {
    const preview = previewWith("idle", { sfs: "false" });
    expect(preview.status).not.toBe(0);
    expect(preview.violations).toContain("no-verda-instance-in-idle @ worker-instance");
  });
});
