// A serverless replica stand-in on loopback: answers `POST /<deployment>/prompt` (what the queue manager
// sends to https://containers.datacrunch.io/<deployment>/prompt) as a running replica of that deployment
// would. It reads the simulator's state for every request: the deployment must exist and have a running
// replica (none at zero replicas, none while cold), and the output goes where the deployment's own command
// says (`--output-directory`), which must lie inside its shared volume mount: the file lands in the SFS
// directory of the volume the deployment mounts, as ComfyUI in the container would write it.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { RunningSimulator } from "../simulator";
import type { Closable } from "./stand-ins";

/** One prompt a replica served: where its output lies on the SFS. */
export interface ServedPrompt {
  deployment: string;
  replica: string;
  volumeId: string;
  /** Path inside the SFS (relative to its root), e.g. outputs/ComfyUI_ab12c_00001_.png. */
  sfsPath: string;
  bytes: number;
  sha256: string;
}

export interface ReplicaStandIn extends Closable {
  /** Base URL standing in for https://containers.datacrunch.io (append /<deployment>/prompt). */
  url: string;
  served(): ServedPrompt[];
}

interface DeploymentState {
  name: string;
  replicas: { id: string; status: string }[];
  containers: { entrypoint_overrides?: { cmd?: string[] }; volume_mounts?: { type: string; mount_path: string; volume_id?: string }[] }[];
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Where the deployment's container writes its outputs on the SFS: [volume id, path inside the SFS]. */
export function outputsOnSfs(d: DeploymentState): [string, string] {
  const container = d.containers[0];
  const cmd = container?.entrypoint_overrides?.cmd ?? [];
  const at = cmd.indexOf("--output-directory");
  const outputs = at >= 0 ? cmd[at + 1] : undefined;
  if (!outputs) throw new Refusal(500, `${d.name}: the container's command has no --output-directory: outputs stay in the replica's own file system and die with it`);
  const shared = (container?.volume_mounts ?? []).find((m) => m.type === "shared" && m.volume_id && (outputs === m.mount_path || outputs.startsWith(`${m.mount_path}/`)));
  if (!shared?.volume_id) throw new Refusal(500, `${d.name}: outputs go to ${outputs}, which is on no shared volume mount: they die with the replica`);
  return [shared.volume_id, path.posix.relative(shared.mount_path, outputs)];
}

/** Starts the stand-in on `host` (an ephemeral port); requests need `Authorization: Bearer <inferenceKey>`. */
export async function startReplicaStandIn(o: { host: string; verda: RunningSimulator; sfsDir: (volumeId: string) => string; inferenceKey: string }): Promise<ReplicaStandIn> {
  const served: ServedPrompt[] = [];
  const serve = (req: IncomingMessage, body: Buffer): ServedPrompt => {
    const match = /^\/([a-z0-9-]+)\/prompt$/.exec(req.url ?? "");
    if (req.method !== "POST" || !match) throw new Refusal(404, `no route ${req.method} ${req.url}`);
    if (req.headers.authorization !== `Bearer ${o.inferenceKey}`) throw new Refusal(401, "invalid inference key");
    const d = o.verda.state().container_deployments.find((x) => x.name === match[1]) as unknown as DeploymentState | undefined;
    if (!d) throw new Refusal(404, `deployment ${match[1]} not found`);
    const replica = d.replicas.find((r) => r.status === "running");
    if (!replica) throw new Refusal(503, `${d.name} has no running replica (${d.replicas.length} starting): nothing serves the prompt`);
    const [volumeId, dir] = outputsOnSfs(d);
    const n = served.filter((s) => s.deployment === d.name).length + 1;
    const sfsPath = path.posix.join(dir, `ComfyUI_${replica.id}_${String(n).padStart(5, "0")}_.png`);
    // An "image": the prompt's hash and random pixels, so every output has its own bytes.
    const bytes = Buffer.concat([Buffer.from(createHash("sha256").update(body).digest("hex")), randomBytes(64 * 1024)]);
    const file = path.join(o.sfsDir(volumeId), sfsPath);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, bytes);
    const record = { deployment: d.name, replica: replica.id, volumeId, sfsPath, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
    served.push(record);
    return record;
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        const r = serve(req, Buffer.concat(chunks));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ prompt_id: r.sha256.slice(0, 32), number: served.length, node_errors: {}, output: r.sfsPath }));
      } catch (e) {
        const status = e instanceof Refusal ? e.status : 500;
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: (e as Error).message }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host}:${port}`,
    served: () => [...served],
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
