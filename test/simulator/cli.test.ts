// `npm run sim` entry point: prints the client environment and loads faults from env and file.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../..");
let child: ChildProcess | undefined;

afterEach(() => {
  child?.kill("SIGTERM");
  child = undefined;
});

function startCli(args: string[], env: Record<string, string>): Promise<Record<string, string>> {
  child = spawn(process.execPath, [join(ROOT, "node_modules/tsx/dist/cli.mjs"), join(ROOT, "sim/simulator/main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolvePromise, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`simulator CLI did not start: ${err}`)), 20_000);
    child!.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child!.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("VERDA_CLIENT_SECRET=")) {
        clearTimeout(timer);
        resolvePromise(Object.fromEntries(out.trim().split("\n").map((l) => l.split("=", 2) as [string, string])));
      }
    });
    child!.on("exit", (code) => reject(new Error(`simulator CLI exited with ${code}: ${err}`)));
  });
}

describe("simulator CLI (npm run sim)", () => {
  it("prints VERDA_BASE_URL/CLIENT_ID/CLIENT_SECRET and loads faults from VERDA_SIM_FAULTS and --faults", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sim-cli-"));
    const file = join(dir, "faults.json");
    writeFileSync(file, JSON.stringify([{ type: "no_capacity", instance_type: "1H100.80S.32V" }]));
    const env = await startCli(["--port", "0", "--faults", file, "--client-id", "cli-id", "--quiet"], {
      VERDA_SIM_FAULTS: JSON.stringify({ type: "latency", ms: 1 }),
    });
    expect(env.VERDA_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(env.VERDA_CLIENT_ID).toBe("cli-id");
    const origin = env.VERDA_BASE_URL!.replace(/\/v1$/, "");
    const faults = (await (await fetch(`${origin}/_sim/faults`)).json()) as Array<{ type: string }>;
    expect(faults.map((f) => f.type).sort()).toEqual(["latency", "no_capacity"]);
    const token = await fetch(`${env.VERDA_BASE_URL}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: env.VERDA_CLIENT_ID, client_secret: env.VERDA_CLIENT_SECRET }),
    });
    expect(token.status).toBe(200);
    const state = (await (await fetch(`${origin}/_sim/state`)).json()) as { rate_limits: { enabled: boolean } };
    expect(state.rate_limits.enabled).toBe(true); // documented limits are on by default from the CLI
  });

  it("refuses a bad fault file", async () => {
    await expect(startCli(["--port", "0"], { VERDA_SIM_FAULTS: '{"type":"nope"}' })).rejects.toThrow(/VERDA_SIM_FAULTS/);
  });
});
