// SSH key pairs for the local cloud (the admin's and mello's user keys, the seeded worker identities),
// made by OpenSSH's own ssh-keygen so every key is one OpenSSH accepts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

/** A fresh ed25519 key pair: `privateKey` (OpenSSH format) and `publicKey` ("ssh-ed25519 AAAA..."). */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "comfyume-sim-key-"));
  try {
    const file = path.join(dir, "key");
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`local cloud: ssh-keygen failed: ${(r.stderr || r.error?.message || "").trim()}`);
    return { privateKey: readFileSync(file, "utf8"), publicKey: readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
