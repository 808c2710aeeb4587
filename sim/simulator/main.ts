// CLI: `npm run sim -- --port 8787 [--faults rules.json] [--speed 3600] ...` (see docs/simulator.md).
// Prints the environment a client needs, then serves until interrupted.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseFaultRules } from "./faults";
import { startSimulator } from "./index";
import type { CreateIdFormat, FaultRule, SimulatorOptions } from "./types";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    host: { type: "string", default: "127.0.0.1" },
    faults: { type: "string" },
    speed: { type: "string" },
    balance: { type: "string" },
    currency: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "token-ttl-ms": { type: "string" },
    "no-rate-limits": { type: "boolean", default: false },
    "ordered-ms": { type: "string" },
    "provisioning-ms": { type: "string" },
    "cold-start-ms": { type: "string" },
    "action-ms": { type: "string" },
    "volume-ms": { type: "string" },
    "create-id-format": { type: "string" },
    "os-volume-on-implicit-delete": { type: "string" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(
    "Usage: npm run sim -- [--port N] [--host H] [--faults FILE] [--speed N] [--balance N] [--currency usd|eur]\n" +
      "  [--client-id ID] [--client-secret S] [--token-ttl-ms MS] [--no-rate-limits]\n" +
      "  [--ordered-ms MS] [--provisioning-ms MS] [--action-ms MS] [--volume-ms MS] [--cold-start-ms MS]\n" +
      "  [--create-id-format bare|json-string|object] [--os-volume-on-implicit-delete keep|delete] [--quiet]\n" +
      "Env: VERDA_SIM_FAULTS = JSON rules or a path to a JSON file. Details: docs/simulator.md\n",
  );
  process.exit(0);
}

function number(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${raw}`);
  return n;
}

function loadFaults(source: string | undefined, label: string): FaultRule[] {
  if (!source) return [];
  const text = /^\s*[[{]/.test(source) ? source : readFileSync(source, "utf8");
  try {
    return parseFaultRules(JSON.parse(text));
  } catch (err) {
    throw new Error(`${label}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function main(): Promise<void> {
  const faults = [...loadFaults(process.env.VERDA_SIM_FAULTS, "VERDA_SIM_FAULTS"), ...loadFaults(values.faults, "--faults")];
  const opts: SimulatorOptions = {
    port: number("port", values.port),
    host: values.host,
    faults,
    speed: number("speed", values.speed),
    balance: number("balance", values.balance),
    currency: values.currency as "usd" | "eur" | undefined,
    clientId: values["client-id"],
    clientSecret: values["client-secret"],
    tokenTtlMs: number("token-ttl-ms", values["token-ttl-ms"]),
    rateLimits: !values["no-rate-limits"],
    timing: {
      ...(values["ordered-ms"] ? { orderedMs: number("ordered-ms", values["ordered-ms"]) } : {}),
      ...(values["provisioning-ms"] ? { provisioningMs: number("provisioning-ms", values["provisioning-ms"]) } : {}),
      ...(values["cold-start-ms"] ? { replicaColdStartMs: number("cold-start-ms", values["cold-start-ms"]) } : {}),
      ...(values["action-ms"] ? { instanceActionMs: number("action-ms", values["action-ms"]), instanceDeleteMs: number("action-ms", values["action-ms"]) } : {}),
      ...(values["volume-ms"] ? { volumeCreateMs: number("volume-ms", values["volume-ms"]), volumeAttachMs: number("volume-ms", values["volume-ms"]) } : {}),
    },
    createIdFormat: values["create-id-format"] as CreateIdFormat | undefined,
    osVolumeOnImplicitDelete: values["os-volume-on-implicit-delete"] as "keep" | "delete" | undefined,
    log: values.quiet ? undefined : (line) => process.stderr.write(`[sim] ${line}\n`),
    onInstanceRunning: values.quiet
      ? undefined
      : (i) => {
          process.stderr.write(`[sim] instance ${i.id} (${i.hostname}) running at ${i.ip}\n`);
        },
  };
  const sim = await startSimulator(opts);
  process.stdout.write(`VERDA_BASE_URL=${sim.baseUrl}\nVERDA_CLIENT_ID=${sim.clientId}\nVERDA_CLIENT_SECRET=${sim.clientSecret}\n`);
  process.stderr.write(`[sim] control endpoints at ${sim.origin}/_sim/ (state, faults, reset, clock, balance); ${faults.length} fault rule(s) loaded\n`);
  const stop = () => {
    void sim.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
