import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// Production code (what `pulumi up` loads against the real cloud) must never reach the
// simulated cloud (sim/) or the tests (test/); the simulated cloud may import production code.
const ROOT = path.resolve(__dirname, "../..");
const PRODUCTION = ["index.ts", "infra", "components", "policy"];
const FORBIDDEN = ["sim", "test"];

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;

function sourceFiles(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [full];
  return fs
    .readdirSync(full, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(f) && !f.includes("node_modules"))
    .map((f) => path.join(full, f));
}

/** Every relative or absolute import in `file` that lands in a forbidden top-level folder. */
export function forbiddenImports(file: string, source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(SPECIFIER)) {
    const spec = match[1];
    if (!spec.startsWith(".") && !spec.startsWith("/")) continue;
    const target = path.relative(ROOT, path.resolve(path.dirname(file), spec));
    const top = target.split(path.sep)[0];
    if (FORBIDDEN.includes(top)) found.push(`${path.relative(ROOT, file)} imports ${spec} (${target})`);
  }
  return found;
}

describe("import direction", () => {
  it("production folders import nothing from sim/ or test/", () => {
    const files = PRODUCTION.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(50);
    const offences = files.flatMap((f) => forbiddenImports(f, fs.readFileSync(f, "utf8")));
    expect(offences).toEqual([]);
  });

  it("the check catches each import form that would break the rule", () => {
    const file = path.join(ROOT, "infra/verda/example.ts");
    const source = [
      'import { startLocalCloud } from "../../sim/local-cloud";',
      'const s = require("../../test/support/ssh-host");',
      'const m = await import("../../sim/simulator/server");',
      'import "../../sim/rehearsal/run";',
      'import { ok } from "../providers/version";',
      'import pulumi from "@pulumi/pulumi";',
    ].join("\n");
    expect(forbiddenImports(file, source)).toHaveLength(4);
  });

  it("the simulated cloud lives outside infra/", () => {
    for (const moved of ["simulator", "local-cloud", "rehearsal"]) {
      expect(fs.existsSync(path.join(ROOT, "infra", moved))).toBe(false);
      expect(fs.existsSync(path.join(ROOT, "sim", moved))).toBe(true);
    }
  });
});
