// Reading a stack's last state through the CLI, with a stand-in `pulumi` (COMFYUME_POLICY_PULUMI).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasInstance, parseStackExport, prefetchStackState, readStackState } from "../../policy/state";
import { TYPES } from "../../policy/resources";

describe("stack state", () => {
  let dir: string;
  const saved = process.env.COMFYUME_POLICY_PULUMI;
  const fakeCli = (body: string) => {
    const file = path.join(dir, `pulumi-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    process.env.COMFYUME_POLICY_PULUMI = file;
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-state-"));
  });
  afterAll(() => {
    process.env.COMFYUME_POLICY_PULUMI = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("parses an export and tells whether an instance is up", () => {
    const state = parseStackExport(JSON.stringify({ version: 3, deployment: { resources: [{ urn: "u1", type: TYPES.instance }, { urn: "u2", type: TYPES.volume, inputs: { type: "NVMe" } }] } }));
    expect(state).toEqual({ exists: true, resources: [{ urn: "u1", type: TYPES.instance, inputs: {} }, { urn: "u2", type: TYPES.volume, inputs: { type: "NVMe" } }] });
    expect(hasInstance(state)).toBe(true);
    expect(hasInstance(parseStackExport('{"version":3,"deployment":{}}'))).toBe(false);
  });

  it("reads the running stack's state ahead, in the background, so a rule at the end of an update waits on no CLI", async () => {
    const log = path.join(dir, "prefetch.log");
    fakeCli(`echo "$PWD $*" >> ${log}; echo '{"version":3,"deployment":{"resources":[{"urn":"u1","type":"${TYPES.instance}"}]}}'`);
    await prefetchStackState("organization/comfyume/prefetched-day", dir);
    expect(readStackState("prefetched-day", dir)).toEqual({ exists: true, resources: [{ urn: "u1", type: TYPES.instance, inputs: {} }] });
    expect(fs.readFileSync(log, "utf8").trim().split("\n")).toEqual([`${fs.realpathSync(dir)} stack export --stack prefetched-day --non-interactive`]);
  });

  it("leaves a failed read ahead to the rule, which then fails closed with the CLI's message", async () => {
    fakeCli(`echo 'error: passphrase must be set' >&2; exit 1`);
    await prefetchStackState("unreadable-day", dir);
    expect(() => readStackState("unreadable-day", dir)).toThrow(/cannot read the state of stack unreadable-day .*passphrase must be set/);
  });

  it("runs `stack export --stack <name>` in the program's directory and caches the answer", () => {
    const log = path.join(dir, "calls.log");
    fakeCli(`echo "$PWD $*" >> ${log}; echo '{"version":3,"deployment":{"resources":[]}}'`);
    expect(readStackState("cached-stack", dir)).toEqual({ exists: true, resources: [] });
    expect(readStackState("cached-stack", dir)).toEqual({ exists: true, resources: [] });
    expect(fs.readFileSync(log, "utf8").trim().split("\n")).toEqual([`${fs.realpathSync(dir)} stack export --stack cached-stack --non-interactive`]);
  });

  it("reports a stack that was never created as not existing", () => {
    fakeCli(`echo "error: no stack named 'testing-day' found" >&2; exit 255`);
    expect(readStackState("missing-stack", dir)).toEqual({ exists: false, resources: [] });
  });

  it("throws with the CLI's words on any other failure", () => {
    fakeCli(`echo "error: passphrase must be set" >&2; exit 255`);
    expect(() => readStackState("locked-stack", dir)).toThrow(/cannot read the state of stack locked-stack .*passphrase must be set/);
  });
});
