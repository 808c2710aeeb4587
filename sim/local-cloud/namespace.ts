// How commands run "on" a simulated host: in a private mount namespace (host-namespace.sh) where
// the host's root directory is bind-mounted over the absolute paths the Pulumi program names.
// Root uses `unshare --mount`; other users need unprivileged user namespaces (`--map-root-user`).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export const SHIMS_DIR = path.join(__dirname, "shims");
const WRAPPER = path.join(__dirname, "host-namespace.sh");

/**
 * Absolute paths the program passes to the host scripts (paths.scriptsDir /opt/comfyume,
 * paths.sfsMount /mnt/sfs, the restore log under /var/log/comfyume), where the first-boot
 * script installs host keys (/etc/ssh) and where the backup cron job runs its installed copy
 * of the scripts from (/usr/local/lib/comfyume). Each must exist on this machine to be bound over.
 */
export const HOST_BOUND_DIRS = ["/opt", "/mnt", "/var/log", "/etc/ssh", "/usr/local/lib"];

function unsharePrefix(): string[] {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return isRoot ? ["unshare", "--mount", "--propagation", "private"] : ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"];
}

/** argv prefix; the command string is appended as the last argument. */
export function hostExecWrapper(root: string): string[] {
  return [...unsharePrefix(), "bash", WRAPPER, root, ...HOST_BOUND_DIRS, "--"];
}

/** Fails with a clear message when bind mounts in a private namespace are not possible here. */
export function checkNamespaceSupport(baseDir: string): void {
  const missing = HOST_BOUND_DIRS.filter((d) => !existsSync(d));
  if (missing.length > 0) throw new Error(`local cloud: ${missing.join(", ")} must exist on this machine (simulated hosts bind their own directories over them)`);
  const bound = HOST_BOUND_DIRS.find((d) => baseDir === d || baseDir.startsWith(`${d}/`));
  if (bound) throw new Error(`local cloud: its directory ${baseDir} must not be under ${bound}; set TMPDIR elsewhere`);
  const probe = mkdtempSync(path.join(tmpdir(), "comfyume-ns-probe-"));
  try {
    const r = spawnSync(hostExecWrapper(probe)[0]!, [...hostExecWrapper(probe).slice(1), "test -d /opt && test -d /mnt/."], { encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0) {
      throw new Error(
        "local cloud: cannot create a private mount namespace for the simulated hosts " +
          `(${(r.stderr || r.error?.message || "").trim()}). Run as root (e.g. in the CI container) or enable unprivileged user namespaces ` +
          "(sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0).",
      );
    }
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
