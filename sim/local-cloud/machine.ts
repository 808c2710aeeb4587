// One simulated machine: the stock Debian rootfs (COMFYUME_SIM_ROOTFS, read-only) under an overlay
// whose upper layer is the machine's own disk, in its own mount, pid and uts namespaces (an init
// process started by machine/machine-init.sh), chrooted at that root. Everything that runs "on"
// the machine (first boot, sshd and its sessions, cron jobs) enters those namespaces with nsenter.
//   <dir>/root   the machine's "/" seen from outside (the overlay, mounted in this process's namespace)
//   <dir>/upper, <dir>/work   the overlay's layers
//   <dir>/dev    its /dev: device nodes made here (null, zero, ..., scratch volumes as vdX)
//   <dir>/state  the stand-ins' state, /var/lib/comfyume-sim inside
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { REMOTE_PATH } from "../../infra/remote/remote-shell";

const INIT_SCRIPT = path.join(__dirname, "machine", "machine-init.sh");
/** Ubuntu's default PATH: what a root login shell has, and every remote command sets. */
export const MACHINE_PATH = REMOTE_PATH;
/** The overlay's source name: how leftovers of a crashed run are recognised in /proc/mounts. */
const OVERLAY_SOURCE = "comfyume-sim-machine";

export interface HostDirs {
  dir: string;
  /** The machine's "/" seen from outside (its overlay root; mounts made inside do not show here). */
  root: string;
  /** The stand-ins' state: /var/lib/comfyume-sim on the machine. */
  state: string;
  /** The machine's /dev (device nodes: null, zero, ..., vdX of attached scratch volumes). */
  dev: string;
}

export interface ExecResult {
  code: number;
  out: string;
}

/** The stock image; fails with the fix when npm run setup has not built it. */
export function simRootfs(): string {
  const rootfs = process.env.COMFYUME_SIM_ROOTFS ?? "";
  if (!rootfs || !existsSync(path.join(rootfs, "usr/sbin/sshd"))) {
    throw new Error(
      `local cloud: COMFYUME_SIM_ROOTFS ('${rootfs}') is not the simulated machines' image (no usr/sbin/sshd). ` +
        "Run `npm run setup` (it builds the image), and run through scripts/node-env (which exports the variable).",
    );
  }
  return rootfs;
}

function run(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`local cloud: ${what} failed: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout;
}

function makeDevNodes(dev: string): void {
  for (const d of ["pts", "shm", "disk/by-id"]) mkdirSync(path.join(dev, d), { recursive: true });
  const nodes: [string, number, number][] = [["null", 1, 3], ["zero", 1, 5], ["full", 1, 7], ["random", 1, 8], ["urandom", 1, 9], ["tty", 5, 0]];
  for (const [name, major, minor] of nodes) run(["mknod", "-m", "666", path.join(dev, name), "c", String(major), String(minor)], `mknod /dev/${name}`);
  const links: [string, string][] = [["ptmx", "pts/ptmx"], ["fd", "/proc/self/fd"], ["stdin", "/proc/self/fd/0"], ["stdout", "/proc/self/fd/1"], ["stderr", "/proc/self/fd/2"]];
  for (const [name, target] of links) symlinkSync(target, path.join(dev, name));
}

/** Unmounts `target`, lazily when it is busy. */
export function unmount(target: string): void {
  if (spawnSync("umount", [target]).status !== 0) spawnSync("umount", ["-l", target]);
}

function isMounted(target: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === target);
}

export class Machine {
  private constructor(
    readonly dirs: HostDirs,
    readonly hostname: string,
    private readonly unshare: ChildProcess,
    /** Outer pid of the machine's init (PID 1 inside). */
    readonly initPid: number,
  ) {}

  /** Mounts the overlay, makes /dev, starts the init; resolves once the machine's namespaces exist. */
  static async start(dir: string, hostname: string, volumesDir: string): Promise<Machine> {
    const rootfs = simRootfs();
    const dirs: HostDirs = { dir, root: path.join(dir, "root"), state: path.join(dir, "state"), dev: path.join(dir, "dev") };
    for (const d of [dirs.root, dirs.state, path.join(dir, "upper"), path.join(dir, "work")]) mkdirSync(d, { recursive: true });
    makeDevNodes(dirs.dev);
    run(["mount", "-t", "overlay", OVERLAY_SOURCE, "-o", `lowerdir=${rootfs},upperdir=${dir}/upper,workdir=${dir}/work`, dirs.root], "the machine's overlay mount");
    writeFileSync(path.join(dirs.root, "etc/hostname"), `${hostname}\n`);
    writeFileSync(path.join(dirs.root, "etc/hosts"), `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n::1 localhost ip6-localhost ip6-loopback\n`);
    const unshare = spawn("unshare", ["--mount", "--pid", "--uts", "--fork", "--propagation", "slave", "bash", INIT_SCRIPT, dir, hostname, volumesDir], {
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    unshare.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const ready = path.join(dirs.state, "init.ready");
    const deadline = Date.now() + 15_000;
    while (!existsSync(ready)) {
      if (unshare.exitCode !== null || Date.now() > deadline) {
        unshare.kill("SIGKILL");
        unmount(dirs.root);
        throw new Error(`local cloud: machine ${hostname} did not start: ${stderr.trim() || "no init within 15 s"}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const children = readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, "utf8").trim().split(/\s+/);
    return new Machine(dirs, hostname, unshare, Number(children[0]));
  }

  /**
   * What to spawn to run `argv` inside the machine as root: spawn `argv` with exactly `env` as its
   * environment (nsenter passes it on), so no value shows on a command line.
   */
  enter(argv: string[], env: Record<string, string>): { argv: string[]; env: Record<string, string> } {
    return { argv: ["/usr/bin/nsenter", "--target", String(this.initPid), "--mount", "--pid", "--uts", "--root", "--wd", "--", ...argv], env };
  }

  /** Runs a shell command on the machine as root (a login-like environment); kills it after `timeoutMs`. */
  exec(command: string, opts: { timeoutMs: number; env?: Record<string, string>; shell?: string; stdin?: string }): Promise<ExecResult> {
    const env = opts.env ?? { PATH: MACHINE_PATH, HOME: "/root", USER: "root", LOGNAME: "root", LANG: "C.UTF-8" };
    const entry = this.enter([opts.shell ?? "/bin/bash", "-c", command], env);
    return new Promise((resolve) => {
      const child = spawn(entry.argv[0]!, entry.argv.slice(1), { env: entry.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      const timer = setTimeout(() => {
        out += `\n(local cloud: killed after ${opts.timeoutMs} ms)\n`;
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, opts.timeoutMs);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, out });
      });
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(opts.stdin ?? "");
    });
  }

  /** Outer pids of every process in the machine except its init (sshd, sessions, their commands). */
  processes(): number[] {
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${this.initPid}/ns/pid`);
    } catch {
      return [];
    }
    const pids: number[] = [];
    for (const e of readdirSync("/proc")) {
      if (!/^\d+$/.test(e) || Number(e) === this.initPid) continue;
      try {
        if (readlinkSync(`/proc/${e}/ns/pid`) === ns) pids.push(Number(e));
      } catch {
        // exited meanwhile
      }
    }
    return pids;
  }

  /** Kills every process on the machine but its init (sshd down: sessions and their commands die). */
  async killAllButInit(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      const pids = this.processes();
      if (pids.length === 0) return;
      for (const p of pids) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // gone
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The machine is gone: its init dies (with every process in it), then its root is unmounted. */
  async close(): Promise<void> {
    if (this.unshare.exitCode === null) {
      const exited = new Promise((r) => this.unshare.once("exit", r));
      try {
        process.kill(this.initPid, "SIGKILL");
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    }
    if (isMounted(this.dirs.root)) unmount(this.dirs.root);
  }
}

/** Cleans up after a crashed earlier run under /tmp/comfyume-local-cloud-* (its owner pid is gone): processes, mounts, loop devices, files. */
export function sweepLeftovers(tmp: string): void {
  const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "");
  for (const name of readdirSync(tmp).filter((n) => n.startsWith("comfyume-local-cloud-"))) {
    const base = path.join(tmp, name);
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(base, "owner.pid"), "utf8"));
    } catch {
      continue; // not ours to judge (an older layout, or still starting)
    }
    if (owner > 0 && existsSync(`/proc/${owner}`)) continue; // a live cloud (another run)
    // Its machines (detached inits) and its S3 server outlived it: kill every process rooted in it or naming it.
    for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
      let root = "";
      let cmdline = "";
      try {
        root = readlinkSync(`/proc/${pid}/root`);
        cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        continue;
      }
      if (root.startsWith(`${base}/`) || cmdline.includes(`${base}/`)) spawnSync("kill", ["-KILL", pid]);
    }
    for (const m of mounts.filter((t) => t.startsWith(`${base}/`)).sort().reverse()) spawnSync("umount", ["-l", m]);
    const loops = spawnSync("losetup", ["-l", "-n", "-O", "NAME,BACK-FILE"], { encoding: "utf8" }).stdout.split("\n");
    for (const [dev = "", file = ""] of loops.map((l) => l.trim().split(/\s+/))) if (file.startsWith(`${base}/`)) spawnSync("losetup", ["-d", dev]);
    rmSync(base, { recursive: true, force: true });
  }
}
