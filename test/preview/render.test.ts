// The Markdown: data at risk first, then counts, policy violations, errors and changes by component.
import { describe, expect, it } from "vitest";
import type { PlannedChange, PreviewData } from "../../scripts/preview/model";
import { renderSummary } from "../../scripts/preview/render";

const stackUrn = "urn:pulumi:workshop-month::comfyume::pulumi:pulumi:Stack::comfyume-workshop-month";
const sfsParent = "urn:pulumi:workshop-month::comfyume::comfyume:verda:SharedFilesystem::sfs";
const change = (kind: PlannedChange["kind"], name: string, type: string, extra: Partial<PlannedChange> = {}): PlannedChange => ({
  kind,
  op: kind,
  urn: `urn:pulumi:workshop-month::comfyume::${type}::${name}`,
  type,
  parent: stackUrn,
  protect: false,
  changedKeys: [],
  ...extra,
});

const data = (changes: PlannedChange[], extra: Partial<PreviewData> = {}): PreviewData => ({
  changes,
  changeSummary: {},
  diagnostics: [],
  policyViolations: [],
  policyEventsSeen: true,
  ...extra,
});

describe("preview summary Markdown", () => {
  it("lists replacements and deletions of data holders first, under a warning", () => {
    const md = renderSummary(
      data([
        change("create", "loader", "pulumi-nodejs:dynamic/verda:Instance"),
        change("update", "models", "cloudflare:index/r2Bucket:R2Bucket", { changedKeys: ["location"] }),
        change("replace", "mello", "hcloud:index/server:Server", { changedKeys: ["image"], protect: true }),
        change("delete", "sfs-volume", "pulumi-nodejs:dynamic/verda:Volume", { parent: sfsParent, protect: true, old: { inputs: { type: "NVMe_Shared" } } }),
        change("replace", "scratch", "pulumi-nodejs:dynamic/verda:Volume", { parent: sfsParent, changedKeys: ["locationCode"], old: { inputs: { type: "NVMe" } } }),
        change("delete", "key", "pulumi-nodejs:dynamic/verda:SshKey", { protect: true }),
        change("delete", "script", "pulumi-nodejs:dynamic/verda:StartupScript"),
      ]),
      { stack: "workshop-month" },
    );
    const warning = md.slice(md.indexOf("[!WARNING]"), md.indexOf("**Changes:**"));
    expect(md.indexOf("[!WARNING]")).toBeLessThan(md.indexOf("#### Changes by component"));
    expect(warning.split("\n").filter((l) => l.startsWith("> - "))).toEqual([
      "> - **DELETE** `key` (verda:SshKey) — protected resource",
      "> - **DELETE** `sfs-volume` (verda:Volume) — shared file system (models, worker image, restore cache), protected",
      "> - **REPLACE** `mello` (hcloud:index/server:Server) — mello server (frontends, Redis queue), protected; because of `image`",
      "> - **REPLACE** `scratch` (verda:Volume) — scratch volume (user inputs and outputs); because of `locationCode`",
    ]);
    expect(warning).not.toContain("`script`");
    expect(warning).not.toContain("`models`");
  });

  it("has no warning when nothing holding data goes", () => {
    const md = renderSummary(data([change("create", "loader", "pulumi-nodejs:dynamic/verda:Instance")], { changeSummary: { create: 1, same: 4 } }), { stack: "s" });
    expect(md).not.toContain("[!WARNING]");
    expect(md).toContain("**Changes:** 1 to create · 4 unchanged");
  });

  it("groups changes by component, deletions first, and escapes table cells", () => {
    const md = renderSummary(
      data([
        change("create", "b|c", "pulumi-nodejs:dynamic/verda:Instance", { parent: sfsParent }),
        change("update", "a", "pulumi-nodejs:dynamic/verda:Volume", { parent: sfsParent, changedKeys: ["size"] }),
        change("other", "ref", "pulumi:pulumi:StackReference", { op: "read" }),
      ]),
      { stack: "s" },
    );
    const section = md.slice(md.indexOf("#### Changes by component"));
    expect(section.indexOf("**Stack (top level)**")).toBeLessThan(section.indexOf("**comfyume:verda:SharedFilesystem `sfs`**"));
    expect(section).toContain("| read | `ref` | `pulumi:pulumi:StackReference` |  |");
    expect(section.indexOf("| update | `a`")).toBeLessThan(section.indexOf("| create | `b\\|c`"));
  });

  it("shows policy violations, errors and the cost tool's answer", () => {
    const md = renderSummary(
      data([], {
        policyViolations: [{ policy: "no-verda-instance-in-idle", level: "mandatory", message: "The idle phase runs no Verda instance.\nRemove it.", urn: "urn:pulumi:idle::comfyume::pulumi-nodejs:dynamic/verda:Instance::gpu" }],
        diagnostics: [{ severity: "error", message: "preview failed" }],
      }),
      { stack: "idle", cost: { monthlyDelta: 12.5, currency: "EUR" } },
    );
    expect(md).toContain("- ❌ **no-verda-instance-in-idle** (mandatory) on `gpu`: The idle phase runs no Verda instance. — Remove it.");
    expect(md).toContain("- **error**: preview failed");
    expect(md).toContain('"monthlyDelta": 12.5');
  });

  it("says when the input could not carry policy results", () => {
    expect(renderSummary(data([], { policyEventsSeen: false }), { stack: "s" })).toMatch(/Policy results are not in this input/);
  });
});
