// The filesystem layout and command environment of one simulated host (an instance or mello).
//   <dir>/root   the host's filesystem (COMFYUME_ROOT; SFTP "/" maps here; /opt, /mnt, /var/log,
//                /etc/ssh are bound here for every command, see namespace.ts)
//   <dir>/state  the shims' state: mounts table, units, docker images, call log (not on the host)
//   <dir>/nfs    NFS exports this host may mount: <nfs-host>/<pseudo-path> -> an SFS directory
//   <dir>/tmp    TMPDIR of the host's commands
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { SHIMS_DIR } from "./namespace";

export interface HostDirs {
  dir: string;
  root: string;
  state: string;
  nfsExports: string;
}

export function makeHostDirs(dir: string): HostDirs {
  const dirs = { dir, root: path.join(dir, "root"), state: path.join(dir, "state"), nfsExports: path.join(dir, "nfs") };
  for (const d of [dirs.root, dirs.state, dirs.nfsExports, path.join(dirs.state, "units"), path.join(dir, "tmp")]) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(dirs.state, "mounts"), "");
  writeFileSync(path.join(dirs.state, "calls.log"), "");
  // A cloud image boots with these running (tailscale preinstalled, as restore-instance assumes).
  for (const unit of ["ssh", "docker", "tailscaled", "cron"]) writeFileSync(path.join(dirs.state, "units", unit), "");
  mkdirSync(path.join(dirs.root, "etc"), { recursive: true });
  writeFileSync(path.join(dirs.root, "etc/fstab"), "# /etc/fstab: static file system information (local cloud image)\nLABEL=cloudimg-rootfs / ext4 defaults 0 1\n");
  return dirs;
}

/** Environment of every command on the host: shims first on PATH, the scripts' test overrides set. */
export function hostShellEnv(d: HostDirs, ip: string): Record<string, string> {
  return {
    PATH: `${SHIMS_DIR}:${process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`,
    COMFYUME_ROOT: d.root,
    PROC_MOUNTS: path.join(d.state, "mounts"),
    DEV_DIR: path.join(d.root, "dev"),
    DEV_BY_ID_DIR: path.join(d.root, "dev/disk/by-id"),
    // Scratch "devices" are disk image files.
    SCRATCH_ALLOW_FILE: "1",
    SIM_STATE: d.state,
    SIM_NFS_EXPORTS: d.nfsExports,
    SIM_HOST_IP: ip,
    // The host's own /tmp: whatever a script leaves there goes with the cloud.
    TMPDIR: path.join(d.dir, "tmp"),
  };
}
