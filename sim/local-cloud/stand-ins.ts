// Service stand-ins on loopback: each instance's "ComfyUI" (HTTP, answers once the docker shim has
// started the worker) and mello's "Redis" (enough RESP for AUTH and PING).
import { existsSync, readdirSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import * as path from "node:path";

export interface Closable {
  close(): Promise<void>;
}

function closeServer(server: HttpServer | NetServer, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

function trackSockets(server: HttpServer | NetServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return sockets;
}

async function listen(server: HttpServer | NetServer, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
}

/** True once `docker compose up -d <service>` ran on the host (the docker shim's marker). */
export function workerRunning(shimState: string): boolean {
  const dir = path.join(shimState, "docker");
  return existsSync(dir) && readdirSync(dir).some((f) => f.startsWith("running-"));
}

/** True while `docker compose up -d` has started this service on the host (and nothing stopped it since). */
export function serviceRunning(shimState: string, service: string): boolean {
  return existsSync(path.join(shimState, "docker", `running-${service}`));
}

/** "ComfyUI": 200 while the worker runs; before that the connection is dropped, as nothing would listen. */
export async function startComfyUiStandIn(host: string, port: number, shimState: string): Promise<Closable> {
  const server = createHttpServer((req, res) => {
    if (!workerRunning(shimState)) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<title>ComfyUI</title>local cloud stand-in\n");
  });
  const sockets = trackSockets(server);
  await listen(server, host, port);
  return { close: () => closeServer(server, sockets) };
}

/**
 * "Redis": AUTH <password> then PING -> PONG; anything else is an error reply. With `ready`, a connection
 * while it is false is dropped, as nothing would listen (an app host's Redis before compose starts it).
 */
export async function startRedisStandIn(host: string, port: number, password: string, ready?: () => boolean): Promise<Closable> {
  const server = createNetServer((socket) => {
    if (ready && !ready()) {
      socket.destroy();
      return;
    }
    let authed = password === "";
    let pending = Buffer.alloc(0);
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = parseRespCommand(pending);
        if (!parsed) return;
        pending = pending.subarray(parsed.consumed);
        const [name = "", ...args] = parsed.parts;
        switch (name.toUpperCase()) {
          case "AUTH":
            authed = args[args.length - 1] === password;
            socket.write(authed ? "+OK\r\n" : "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
            break;
          case "PING":
            socket.write(authed ? "+PONG\r\n" : "-NOAUTH Authentication required.\r\n");
            break;
          case "QUIT":
            socket.end("+OK\r\n");
            return;
          default:
            socket.write(`-ERR unknown command '${name}' (local cloud stand-in)\r\n`);
        }
      }
    });
  });
  const sockets = trackSockets(server);
  await listen(server, host, port);
  return { close: () => closeServer(server, sockets) };
}

/** One RESP array of bulk strings from the front of `buf`, or null when incomplete. */
function parseRespCommand(buf: Buffer): { parts: string[]; consumed: number } | null {
  const text = buf.toString("latin1");
  const head = /^\*(\d+)\r\n/.exec(text);
  if (!head) return null;
  let pos = head[0].length;
  const parts: string[] = [];
  for (let i = 0; i < Number(head[1]); i++) {
    const bulk = /^\$(\d+)\r\n/.exec(text.slice(pos));
    if (!bulk) return null;
    const start = pos + bulk[0].length;
    const end = start + Number(bulk[1]);
    if (text.length < end + 2) return null;
    parts.push(text.slice(start, end));
    pos = end + 2;
  }
  return { parts, consumed: pos };
}
