// A TCP gate on loopback in front of a service (the fault rehearsal puts one in front of the S3
// endpoint): while open it forwards every connection; `down()` resets the open connections and stops
// listening (new dials are refused, as when the service is unreachable); `up()` listens again on the
// same port. Nothing behind the gate changes, so the data survives the outage.
import * as net from "node:net";

export interface TcpGate {
  /** host:port clients dial. */
  host: string;
  port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  isDown(): boolean;
  close(): Promise<void>;
}

export async function startTcpGate(targetHost: string, targetPort: number, host = "127.0.0.1"): Promise<TcpGate> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  };
  const makeServer = () =>
    net.createServer((client) => {
      track(client);
      const upstream = net.connect(targetPort, targetHost);
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  const listen = (server: net.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        const a = server.address();
        resolve(typeof a === "object" && a ? a.port : port);
      });
    });
  let server: net.Server | undefined = makeServer();
  const port = await listen(server, 0);
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.resetAndDestroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    host,
    port,
    down: stop,
    async up() {
      if (server) return;
      const s = makeServer();
      await listen(s, port);
      server = s;
    },
    isDown: () => server === undefined,
    close: stop,
  };
}
