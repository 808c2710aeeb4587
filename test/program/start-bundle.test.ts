// infra/start/bundle.cjs starts the program and the policy pack from an esbuild bundle: built on first use,
// reused while every input is unchanged, rebuilt after any edit, and loaded through tsx when it cannot be built.
// An error of the entry itself (a configuration error) must reach Pulumi as it is, never trigger a second load.
// Each start runs in its own Node process on a throwaway copy of the loader with a small TypeScript entry.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../..");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A project like the repository: its package.json, node_modules (esbuild, tsx), the loader, an entry. */
function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "start-bundle-"));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "comfyume-infra", private: true }));
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  fs.mkdirSync(path.join(dir, "infra/start"), { recursive: true });
  fs.copyFileSync(path.join(REPO, "infra/start/bundle.cjs"), path.join(dir, "infra/start/bundle.cjs"));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** Starts `entry` as the program's start file does; prints what it exports as JSON, or the error it threw. */
function start(dir: string, entry = "entry.ts", env: NodeJS.ProcessEnv = {}): { out: string; err: string; code: number | null } {
  const script = `try { const m = require(${JSON.stringify(path.join(dir, "infra/start/bundle.cjs"))}).startBundled(${JSON.stringify(entry)}, "program"); console.log(JSON.stringify(m)); } catch (e) { console.log("THREW " + e.message); }`;
  const r = spawnSync(process.execPath, ["-e", script], { cwd: dir, env: { ...process.env, COMFYUME_BUNDLE: "", ...env }, encoding: "utf8", timeout: 60_000 });
  return { out: r.stdout.trim(), err: r.stderr, code: r.status };
}

const bundle = (dir: string) => path.join(dir, ".comfyume/bundles/program.js");

describe("starting an entry from its bundle", () => {
  it("builds the bundle on first use, reuses it while nothing changed, and rebuilds after an edit", () => {
    const dir = project({ "entry.ts": `import { value } from "./lib/value";\nexport = { value, from: __filename.endsWith(".js") ? "bundle" : "source" };\n`, "lib/value.ts": `export const value: number = 1;\n` });
    expect(start(dir).out).toBe(JSON.stringify({ value: 1, from: "bundle" }));
    const built = fs.statSync(bundle(dir));
    const inputs = JSON.parse(fs.readFileSync(path.join(dir, ".comfyume/bundles/program.inputs.json"), "utf8")) as { inputs: Record<string, string> };
    expect(Object.keys(inputs.inputs).sort()).toEqual(["entry.ts", "lib/value.ts"]);

    expect(start(dir).out).toBe(JSON.stringify({ value: 1, from: "bundle" }));
    expect(fs.statSync(bundle(dir)).mtimeMs).toBe(built.mtimeMs);
    expect(fs.statSync(bundle(dir)).ino).toBe(built.ino);

    // Same size, same modification time: only the content differs, and that is what is compared.
    const file = path.join(dir, "lib/value.ts");
    const { atime, mtime } = fs.statSync(file);
    fs.writeFileSync(file, `export const value: number = 2;\n`);
    fs.utimesSync(file, atime, mtime);
    expect(start(dir).out).toBe(JSON.stringify({ value: 2, from: "bundle" }));
    expect(fs.statSync(bundle(dir)).ino).not.toBe(built.ino);
  });

  it("loads the entry through tsx, with a warning naming why, when esbuild cannot build it", () => {
    // esbuild resolves every require at build time; tsx only when it runs: this entry loads, but cannot be bundled.
    const dir = project({ "entry.ts": `export const value = 3;\nexport function later(): unknown { return require("./not-there"); }\n` });
    const r = start(dir);
    expect(r.out).toBe(JSON.stringify({ value: 3 }));
    expect(r.err).toMatch(/could not bundle entry\.ts \(Could not resolve "\.\/not-there"\); loading it through tsx instead/);
    expect(fs.existsSync(bundle(dir))).toBe(false);
  });

  it("COMFYUME_BUNDLE=off loads the entry through tsx and builds nothing", () => {
    const dir = project({ "entry.ts": `export = { from: __filename.endsWith(".ts") ? "source" : "bundle" };\n` });
    expect(start(dir, "entry.ts", { COMFYUME_BUNDLE: "off" }).out).toBe(JSON.stringify({ from: "source" }));
    expect(fs.existsSync(bundle(dir))).toBe(false);
  });

  it("passes an error of the entry itself through unchanged, loading it once", () => {
    const dir = project({ "entry.ts": `import * as fs from "node:fs";\nfs.appendFileSync(${JSON.stringify("LOADS")}, "x");\nthrow new Error("Configuration of stack 'day' has 1 problem");\n` });
    const r = start(dir);
    expect(r.out).toBe("THREW Configuration of stack 'day' has 1 problem");
    expect(r.err).not.toMatch(/could not bundle/);
    expect(fs.readFileSync(path.join(dir, "LOADS"), "utf8")).toBe("x");
  });

  it("finds the repository from the bundle's directory and from the source's", () => {
    const { findRepoRoot } = require(path.join(REPO, "infra/start/bundle.cjs")) as { findRepoRoot(from: string): string };
    expect(findRepoRoot(path.join(REPO, ".comfyume/bundles"))).toBe(REPO);
    expect(findRepoRoot(path.join(REPO, "infra/phases"))).toBe(REPO);
    expect(() => findRepoRoot(os.tmpdir())).toThrow(/no comfyume-infra package.json above/);
  });
});
