// Measures sequential write speed of the local disk (with fsync), for the day-up benchmark.
import * as fs from "node:fs";
import * as path from "node:path";

export function measureDiskBytesPerSecond(dir: string, mib = 64): number {
  const file = path.join(dir, "disk-speed.probe");
  const block = Buffer.alloc(1024 * 1024, 0x5a);
  const started = process.hrtime.bigint();
  const fd = fs.openSync(file, "w");
  try {
    for (let i = 0; i < mib; i++) fs.writeSync(fd, block);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  fs.rmSync(file, { force: true });
  return (mib * 1024 * 1024) / seconds;
}

/** Bytes a day-up restore copies from the SFS: the worker image tarball and the instance cache. */
export function restoreBytes(sfsDir: string): number {
  let total = 0;
  const walk = (p: string) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else total += st.size;
  };
  for (const part of ["worker-image.tar.gz", "cache"]) {
    const p = path.join(sfsDir, part);
    if (fs.existsSync(p)) walk(p);
  }
  return total;
}
