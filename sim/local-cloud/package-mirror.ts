// STUB until engineer "toolchain"'s package-mirror.ts lands on main (same signature, see
// /work/briefs/interfaces-12.md; the integrator keeps theirs): a static HTTP server for the flat
// apt repository COMFYUME_SIM_MIRROR on a loopback address.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

export interface PackageMirror {
  url: string;
  sourcesLine: string;
  requests(): string[];
  close(): Promise<void>;
}

export async function startPackageMirror(o: { dir: string; host: string; port?: number }): Promise<PackageMirror> {
  const served: string[] = [];
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = path.join(o.dir, path.normalize(rel).replace(/^(\.\.[/\\])+/, ""));
    let size = -1;
    try {
      const st = statSync(file);
      if (st.isFile() && file.startsWith(o.dir)) size = st.size;
    } catch {
      size = -1;
    }
    if (size < 0) {
      res.writeHead(404).end();
      return;
    }
    served.push(rel);
    res.writeHead(200, { "content-length": size });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host, () => resolve());
  });
  const url = `http://${o.host}:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    sourcesLine: `deb [trusted=yes] ${url} ./`,
    requests: () => [...served],
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
