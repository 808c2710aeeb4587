// Simulated user activity: filmmakers' inputs and outputs on the worker's scratch volume and their
// user data on mello, then byte-for-byte checks that the next workshop day sees all of it.
import { createHash, randomBytes } from "node:crypto";
import { sshRun, type SshHost } from "./hosts";

export interface WorkFile {
  host: "worker" | "mello";
  path: string;
  sha256: string;
  bytes: number;
}

// mello's files live under its root (COMFYUME_ROOT, where backup-mello reads them); only /opt, /mnt,
// /var/log, /etc/ssh and /usr/local/lib are bound into a host's namespace, so a bare /home path would
// be this machine's own /home.
const onHost = (host: "worker" | "mello", file: string) => (host === "mello" ? `"$COMFYUME_ROOT"'${file}'` : `'${file}'`);

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Writes one file per (user, place) with random content and returns what was written. */
export async function simulateUsers(dir: string, keyFile: string, worker: SshHost, mello: SshHost, users = 3): Promise<WorkFile[]> {
  const files: WorkFile[] = [];
  const put = async (host: "worker" | "mello", target: SshHost, file: string, bytes: number) => {
    const content = randomBytes(bytes);
    await sshRun(dir, keyFile, target, `mkdir -p "$(dirname ${onHost(host, file)})" && base64 -d > ${onHost(host, file)}`, content.toString("base64"));
    files.push({ host, path: file, sha256: sha(content), bytes });
  };
  for (let u = 1; u <= users; u++) {
    const user = `user${String(u).padStart(3, "0")}`;
    await put("worker", worker, `/mnt/scratch/inputs/${user}/reference.png`, 48 * 1024);
    await put("worker", worker, `/mnt/scratch/outputs/${user}/ComfyUI_0000${u}_.mp4`, 512 * 1024);
    await put("mello", mello, `/home/dev/comfyume/data/user_data/${user}/workflow.json`, 4 * 1024);
    await put("mello", mello, `/home/dev/comfyume/data/outputs/${user}/final_cut.mp4`, 256 * 1024);
  }
  return files;
}

/** Names every file that is missing or differs on the given hosts; empty when all match. */
export async function verifyWork(dir: string, keyFile: string, worker: SshHost, mello: SshHost, files: WorkFile[]): Promise<string[]> {
  const problems: string[] = [];
  for (const host of ["worker", "mello"] as const) {
    const mine = files.filter((f) => f.host === host);
    if (!mine.length) continue;
    const out = await sshRun(dir, keyFile, host === "worker" ? worker : mello, `sha256sum ${mine.map((f) => onHost(host, f.path)).join(" ")} 2>&1 || true`);
    for (const f of mine) {
      // sha256sum names mello's files with their root in front: match the end of the name.
      const line = out.split("\n").find((l) => l.endsWith(f.path));
      if (!line) problems.push(`${host}:${f.path} missing`);
      else if (!line.startsWith(f.sha256)) problems.push(`${host}:${f.path} differs`);
    }
  }
  return problems;
}
