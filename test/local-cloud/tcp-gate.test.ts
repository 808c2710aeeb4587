// The TCP gate the fault rehearsal puts in front of the S3 endpoint: forwards while up; down()
// resets open connections and refuses new ones; up() serves again on the same port.
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpGate, type TcpGate } from "../../sim/local-cloud/tcp-gate";

const echo = net.createServer((s) => {
  s.on("error", () => undefined); // reset by the gate going down
  s.pipe(s);
});

function talk(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(text));
    s.on("data", (d) => {
      resolve(d.toString());
      s.end();
    });
    s.on("error", reject);
  });
}

describe("local cloud: TCP gate", () => {
  let gate: TcpGate;
  beforeAll(async () => {
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    gate = await startTcpGate("127.0.0.1", (echo.address() as net.AddressInfo).port);
  });
  afterAll(async () => {
    await gate.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  it("forwards, goes down (open connections reset, new ones refused), comes back on the same port", async () => {
    expect(await talk(gate.port, "hello")).toBe("hello");
    const open = net.connect(gate.port, "127.0.0.1");
    await new Promise((r) => open.once("connect", r));
    const closed = new Promise<string>((r) => {
      open.once("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
      open.once("close", () => r("closed"));
    });
    await gate.down();
    expect(gate.isDown()).toBe(true);
    expect(["ECONNRESET", "closed"]).toContain(await closed);
    await expect(talk(gate.port, "x")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await gate.up();
    expect(await talk(gate.port, "again")).toBe("again");
  });
});
