// CLI: `npm run sim` starts the whole local cloud and prints its environment as `export` lines
// (stdout), then serves until Ctrl-C. `npm run sim -- --verda-only [simulator options]` runs just
// the Verda simulator, as before (docs/simulator.md). Details: docs/rehearsal.md.
import { parseArgs } from "node:util";
import { exportLines, startLocalCloud, type LocalCloudOptions } from "./index";

async function verdaOnly(): Promise<void> {
  process.argv = process.argv.filter((a) => a !== "--verda-only");
  await import("../simulator/main");
}

const USAGE = `Usage: npm run sim -- [options]          the whole local cloud (Verda, SSH hosts, R2, mello)
       npm run sim -- --verda-only [...]     only the Verda simulator (see docs/simulator.md)
Options:
  --loopback-net A.B.C     first three octets of the hosts' loopback addresses (default 127.0.0)
  --ssh-port N             SSH port of every simulated host (default 2222)
  --ordered-ms MS          Verda ordered -> provisioning (default 1000)
  --provisioning-ms MS     Verda provisioning -> running (default 3000)
  --volume-ms MS           volume create/attach/detach (default 500)
  --action-ms MS           instance actions and deletion (default 500)
  --speed N                billing clock: simulated ms per real ms (default 1)
  --quiet                  no log lines on stderr
Prints "export NAME=value" lines on stdout (eval them or copy them); logs go to stderr.
Details: docs/rehearsal.md
`;

function num(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got '${raw}'`);
  return n;
}

async function main(): Promise<void> {
  if (process.argv.includes("--verda-only")) return verdaOnly();
  const { values } = parseArgs({
    options: {
      "loopback-net": { type: "string" },
      "ssh-port": { type: "string" },
      "ordered-ms": { type: "string" },
      "provisioning-ms": { type: "string" },
      "volume-ms": { type: "string" },
      "action-ms": { type: "string" },
      speed: { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const action = num("action-ms", values["action-ms"]);
  const volume = num("volume-ms", values["volume-ms"]);
  const timing: LocalCloudOptions["timing"] = {
    ...(values["ordered-ms"] !== undefined ? { orderedMs: num("ordered-ms", values["ordered-ms"]) } : {}),
    ...(values["provisioning-ms"] !== undefined ? { provisioningMs: num("provisioning-ms", values["provisioning-ms"]) } : {}),
    ...(volume !== undefined ? { volumeCreateMs: volume, volumeAttachMs: volume } : {}),
    ...(action !== undefined ? { instanceActionMs: action, instanceDeleteMs: action } : {}),
  };
  const log = values.quiet ? undefined : (line: string) => process.stderr.write(`[local-cloud] ${line}\n`);
  const cloud = await startLocalCloud({
    timing,
    loopbackNet: values["loopback-net"],
    sshPort: num("ssh-port", values["ssh-port"]),
    speed: num("speed", values.speed),
    log,
  });
  process.stdout.write(`${exportLines(cloud.env)}\n`);
  log?.(
    `up in ${cloud.startupMs} ms (R2 seeded: ${cloud.seed.objects} objects, ${(cloud.seed.uploadedBytes / 1048576).toFixed(1)} MiB in ${cloud.seed.ms} ms); ` +
      `mello ssh ${cloud.mello.host}:${cloud.mello.port}; Verda control ${cloud.verda.origin}/_sim/state. Ctrl-C stops and removes everything.`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log?.(`stopping; waited on the simulated cloud for ${cloud.waitedOnCloudMs()} ms in total`);
    void cloud.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`local cloud failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
