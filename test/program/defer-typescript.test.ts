// infra/start/defer-typescript.cjs: a Node process started by scripts/pulumi loads @pulumi/pulumi without TypeScript,
// and still serializes a function (loading TypeScript then) when it has to. Each case is its own Node process.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../..");
const PRELOAD = path.join(REPO, "infra/start/defer-typescript.cjs");

/** Runs `script` in a fresh Node process from `cwd`, with NODE_OPTIONS as scripts/pulumi sets it; its stdout lines. */
function node(script: string, env: NodeJS.ProcessEnv = {}, cwd = REPO): string[] {
  const r = spawnSync(process.execPath, ["-e", script], {
    cwd,
    env: { ...process.env, NODE_OPTIONS: `--require "${PRELOAD}"`, COMFYUME_DEFER_TYPESCRIPT: "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n");
}

const TS_LOADED = `const tsLoaded = () => Object.keys(require.cache).some((f) => f.endsWith("typescript/lib/typescript.js"));`;

describe("defer-typescript", () => {
  it("@pulumi/pulumi loads without TypeScript; serializing a function loads it then, and works", () => {
    const out = node(`${TS_LOADED}
      const pulumi = require("@pulumi/pulumi");
      console.log("after require: " + tsLoaded());
      const captured = 41;
      pulumi.runtime.serializeFunction(() => captured + 1).then((s) => {
        console.log("after serialize: " + tsLoaded());
        console.log("result: " + eval(s.text + "; exports.handler")());
      });`);
    expect(out).toEqual(["after require: false", "after serialize: true", "result: 42"]);
  });

  it("acts from any working directory (the provider host's), and COMFYUME_DEFER_TYPESCRIPT=off leaves the SDK as it is", () => {
    const script = `${TS_LOADED} require(${JSON.stringify(path.join(REPO, "node_modules/@pulumi/pulumi"))}); console.log(tsLoaded());`;
    expect(node(script, {}, "/")).toEqual(["false"]);
    expect(node(script, { COMFYUME_DEFER_TYPESCRIPT: "off" }, "/")).toEqual(["true"]);
  });

});
