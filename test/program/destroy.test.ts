// `pulumi destroy --run-program` runs the program, and the engine does not tell the program it is a destroy.
// The program finds out from its ancestry (the `pulumi` CLI process and its subcommand) and then declares nothing:
// no config validation, money gate, StackReference or Verda read can stop the teardown.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { commandFromAncestry, isDestroyCommand, pulumiCommand, readProcess, subcommandOf, type ProcessInfo } from "../../infra/config/operation";
import { DAY_SECRET_KEYS, dayValues, raw } from "../support/fixtures";

describe("which Pulumi command runs the program", () => {
  it("reads the subcommand after global flags and their values", () => {
    expect(subcommandOf(["destroy", "--stack", "workshop-day", "--run-program", "--yes"])).toBe("destroy");
    expect(subcommandOf(["--cwd", "/srv/infra", "--color", "never", "destroy"])).toBe("destroy");
    expect(subcommandOf(["-C", "destroy", "up", "--stack", "destroy"])).toBe("up");
    expect(subcommandOf(["--non-interactive", "down", "-s", "x"])).toBe("down");
    expect(subcommandOf(["--logtostderr"])).toBeUndefined();
  });

  it("walks up from the program to the pulumi CLI (through the language host and any shell)", () => {
    const table: Record<number, ProcessInfo> = {
      40: { argv: ["node", "--import", "tsx", "/x/@pulumi/pulumi/cmd/run", "index.ts"], ppid: 30 },
      30: { argv: ["/opt/pulumi/bin/pulumi-language-nodejs", "127.0.0.1:4711"], ppid: 20 },
      20: { argv: ["/opt/pulumi/bin/pulumi", "--cwd", "/srv", "destroy", "--stack", "workshop-day", "--run-program"], ppid: 10 },
      10: { argv: ["bash", "scripts/nightly"], ppid: 1 },
    };
    expect(commandFromAncestry(40, (pid) => table[pid])).toBe("destroy");
    table[20].argv = ["pulumi", "up", "--stack", "workshop-day"];
    expect(commandFromAncestry(40, (pid) => table[pid])).toBe("up");
    table[20].argv = ["node", "vitest"];
    expect(commandFromAncestry(40, (pid) => table[pid])).toBeUndefined();
    expect(commandFromAncestry(40, () => undefined)).toBeUndefined();
  });

  it("reads a real process (its own) from the OS", () => {
    const self = readProcess(process.pid);
    expect(self?.ppid).toBe(process.ppid);
    expect(self?.argv.join(" ")).toContain(process.argv[1]);
  });

  it("prefers the CLI found in the ancestry over the wrapper's variable, and falls back to it", () => {
    expect(pulumiCommand({ COMFYUME_PULUMI_COMMAND: "destroy" }, () => "up")).toBe("up");
    expect(pulumiCommand({ COMFYUME_PULUMI_COMMAND: "destroy" }, () => undefined)).toBe("destroy");
    expect(pulumiCommand({}, () => undefined)).toBeUndefined();
    expect(["destroy", "down"].map(isDestroyCommand)).toEqual([true, true]);
    expect(["up", "preview", "refresh", "", undefined].map(isDestroyCommand)).toEqual([false, false, false, false, false]);
  });
});

async function mockRun(stack: string) {
  const registered: string[] = [];
  await pulumi.runtime.setMocks(
    { newResource: (a) => (registered.push(`${a.type} ${a.name}`), { id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs },
    "comfyume",
    stack,
    false,
  );
  return registered;
}

describe("the program under destroy", () => {
  it("declares nothing and throws nothing, even with invalid config", async () => {
    const registered = await mockRun("workshop-day");
    const { buildProgram } = await import("../../infra/program");
    const broken = raw("workshop-day", { ...dayValues(), "comfyume:gpu": { image: "x" }, "comfyume:restore": {} }, []);
    await expect(buildProgram(broken, "up")).rejects.toThrow(/Configuration of stack 'workshop-day' has \d+ problems/);
    expect(await buildProgram(broken, "destroy")).toEqual({});
    await new Promise((r) => setTimeout(r, 50));
    expect(registered).toEqual([]);
  });

  it("declares nothing for a valid day config with the money gate on (no StackReference, no Verda call)", async () => {
    const registered = await mockRun("workshop-day");
    const { buildProgram } = await import("../../infra/program");
    const values = { ...dayValues(), "comfyume:verda": { liveSfsRead: true, moneyGate: true } };
    expect(await buildProgram(raw("workshop-day", values, DAY_SECRET_KEYS), "down")).toEqual({});
    await new Promise((r) => setTimeout(r, 50));
    expect(registered).toEqual([]);
  });

  it("the money gate itself never calls Verda on a destroy (an over-budget stack must still come down)", async () => {
    const { moneyGate } = await import("../../infra/money/phase-gate");
    const untouchable = new Proxy({}, { get: (_t, key) => { throw new Error(`the gate called Verda (${String(key)}) during a destroy`); } });
    const cfg = { stack: "workshop-day", layer: "day", money: { budget: { limit: 1 } } } as never;
    expect(await moneyGate(cfg, { clientId: "x", clientSecret: "y" }, { api: untouchable as never, command: "destroy" })).toBeUndefined();
    // Control: outside a destroy the same call goes ahead (and fails on the half-made config and API).
    await expect(moneyGate(cfg, { clientId: "x", clientSecret: "y" }, { api: untouchable as never, command: "up" })).rejects.toThrow();
  });
});
