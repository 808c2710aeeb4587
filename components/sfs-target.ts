// The NFS mount target (`host:/path`) of a Verda SFS, derived from what the API reports for it.
// Never hard-coded: the pseudo path changes when the SFS is renamed or re-created.

export interface SfsMountData {
  mountCommand?: string | null;
  target?: string | null;
  pseudoPath?: string | null;
}

const HOST_PATH = /^([A-Za-z0-9.-]+):(\/?[^\s]+)$/;

function normalise(hostPath: string): string | undefined {
  const m = HOST_PATH.exec(hostPath);
  if (!m) return undefined;
  const [, host, path] = m;
  return `${host}:${path.startsWith("/") ? path : `/${path}`}`;
}

/** e.g. `mount -t nfs -o nconnect=16 nfs.fin-01.datacrunch.io:volume-88eb67d0 /mnt/volume` -> `nfs.fin-01.datacrunch.io:/volume-88eb67d0`. */
export function sfsMountTarget(data: SfsMountData, locationCode: string): string {
  for (const token of (data.mountCommand ?? "").trim().split(/\s+/)) {
    if (token.startsWith("-") || !token.includes(":")) continue;
    const target = normalise(token);
    if (target) return target;
  }
  const fromTarget = data.target ? normalise(data.target.trim()) : undefined;
  if (fromTarget) return fromTarget;
  if (data.pseudoPath) {
    return `nfs.${locationCode.toLowerCase()}.datacrunch.io:/${data.pseudoPath.replace(/^\/+/, "")}`;
  }
  throw new Error("the SFS has no mount command, NFS target or pseudo path yet: is it created and attached?");
}
