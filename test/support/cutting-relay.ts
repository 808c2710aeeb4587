// A TCP relay in front of an S3 server that cuts the answer to one GET short: the fault of a download
// that stops mid-body. Shared by the restore's and the read-back's tests (one relay, two endings).
import { connect, createServer, type Server, type Socket } from "node:net";

export interface CuttingRelayOptions {
  /** The S3 server the relay forwards to (http://host:port). */
  upstream: string;
  /** The loopback address the relay listens on. */
  host: string;
  /** The first GET whose path contains this is cut. */
  victim: string;
  /** Bytes of that answer passed on before the cut. */
  afterBytes: number;
  /**
   * After the cut: "server-gone" drops every connection and stops listening (the endpoint vanished);
   * "answer-short" drops only that answer's connections and keeps serving (R2 up, one object unreadable).
   */
  then: "server-gone" | "answer-short";
}

export interface CuttingRelay {
  endpoint: string;
  /** How many answers were cut (at most one). */
  cuts: () => number;
  close: () => void;
}

export async function cuttingRelay(o: CuttingRelayOptions): Promise<CuttingRelay> {
  const target = new URL(o.upstream);
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const up = connect(Number(target.port), target.hostname);
    sockets.add(client).add(up);
    let watching = false;
    let passed = 0;
    client.on("data", (d: Buffer) => {
      const head = d.toString("latin1", 0, Math.min(d.length, 400));
      if (cuts === 0 && head.startsWith("GET ") && head.split(" ")[1].includes(o.victim)) watching = true;
      up.write(d);
    });
    up.on("data", (d: Buffer) => {
      if (!watching) return void client.write(d);
      passed += d.length;
      client.write(d.subarray(0, Math.max(0, Math.min(d.length, o.afterBytes - (passed - d.length)))));
      if (passed < o.afterBytes) return;
      cuts += 1;
      watching = false;
      if (o.then === "server-gone") {
        server.close();
        for (const s of sockets) s.destroy();
      } else {
        client.destroy();
        up.destroy();
      }
    });
    for (const s of [client, up]) s.on("error", () => undefined).on("close", () => (client.destroy(), up.destroy()));
  });
  const port = await new Promise<number>((res) => server.listen(0, o.host, () => res((server.address() as { port: number }).port)));
  return { endpoint: `http://${o.host}:${port}`, cuts: () => cuts, close: () => (server.close(), [...sockets].forEach((s) => s.destroy())) };
}
