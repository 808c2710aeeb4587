// The package mirror: stands in for the distribution's archive (the internet) on the simulated
// cloud. A static HTTP server for the flat apt repository sim/image/build-image.sh builds
// (COMFYUME_SIM_MIRROR: the .deb files of the host toolchain, Packages, Packages.gz, Release), on a
// loopback address. A machine uses it with `deb [trusted=yes] http://<addr>:<port>/ ./`.
// requests() lists every path served, in order: tests count downloads with it (a host that installs
// from the SFS toolchain cache must fetch nothing).
import { createReadStream, statSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

export interface PackageMirrorOptions {
  /** The flat apt repository (COMFYUME_SIM_MIRROR); served read-only. */
  dir: string;
  /** Loopback address to listen on, e.g. 127.91.0.3. */
  host: string;
  /** Port; 0 or unset picks a free one. */
  port?: number;
}

export interface PackageMirror {
  /** `http://<host>:<port>/` */
  url: string;
  /** The apt sources line a machine needs: `deb [trusted=yes] <url> ./` */
  sourcesLine: string;
  /** Every path served successfully (200), in order, e.g. `/Packages.gz`, `/jq_1.6-…_amd64.deb`. */
  requests(): string[];
  close(): Promise<void>;
}

/** A request path mapped to a file directly in `dir` (flat repository: no subdirectories), or undefined. */
function fileFor(dir: string, urlPath: string): string | undefined {
  let name: string;
  try {
    name = decodeURIComponent(urlPath.split("?")[0]).replace(/^\/+/, "").replace(/^\.\//, "");
  } catch {
    return undefined;
  }
  if (name === "" || name.includes("/") || name.startsWith(".")) return undefined;
  const file = path.join(dir, name);
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

export async function startPackageMirror(opts: PackageMirrorOptions): Promise<PackageMirror> {
  const dir = path.resolve(opts.dir);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`package mirror: ${dir} is not a directory (COMFYUME_SIM_MIRROR; run npm run setup to build the simulated cloud's image)`);
  }
  if (!statSync(path.join(dir, "Packages"), { throwIfNoEntry: false })) {
    throw new Error(`package mirror: ${dir} has no Packages index (rebuild it with sim/image/build-image.sh)`);
  }
  const served: string[] = [];
  const server = http.createServer((req, res) => {
    const file = req.method === "GET" || req.method === "HEAD" ? fileFor(dir, req.url ?? "/") : undefined;
    if (!file) {
      res.writeHead(req.method === "GET" || req.method === "HEAD" ? 404 : 405, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    const size = statSync(file).size;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(size) });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    served.push(`/${path.basename(file)}`);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host}:${port}/`;
  return {
    url,
    sourcesLine: `deb [trusted=yes] ${url} ./`,
    requests: () => [...served],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
