// Projection of a night's backup wall time from the bench's small data set to the real sizes.
// A night's wall is not linear in bytes: a quiet night is mostly fixed cost per run (rclone starts,
// listings, manifest round trips), which does not grow with the data, and per-file cost (hash state
// lookups, the plan per object), which grows with the number of files, not their bytes. Multiplying
// the whole wall by bytes(real) / bytes(bench) scaled a 3 s fixed cost ~270-fold. So each part
// (SFS, scratch) is modelled as
//   wall = fixed + perFile x files + perByte x (bytes hashed + bytes read back from R2)
// - fixed: a calibration run (the same scripts on one tiny file per set, nothing changed);
// - perByte: night 1, where every byte is hashed, sent and read back: (wall - fixed) / those bytes
//   (night 1's per-file work is folded in: conservative where real files are larger than the bench's);
// - perFile: night 2 (nothing changed) once its fixed cost and the bytes of its read-back sample
//   are taken out, per file of the bench;
// - at real size: night 1 hashes and reads back every byte; nights 2 and 3 read back the rotating
//   sample (samplePercent of the bytes; "worst" is the night the largest object's turn comes, since
//   at least one object is read back); night 3 also hashes and reads back the 1 % changed.
// The real file counts and largest objects are estimates (REAL_FILES, REAL_LARGEST).

/** Real workshop file counts: SFS a few dozen models of 1-25 GB, cache snapshots, the image tarball; scratch thousands of images and videos. */
export const REAL_FILES = { sfs: 60, scratch: 20_000 } as const;
/** Largest single object per part: a 25 GB model; a 500 MB video. */
export const REAL_LARGEST = { sfs: 25e9, scratch: 500e6 } as const;
/** Share of each part's bytes changed or added on a night 3 at real size (the target: 1 %). */
export const REAL_CHANGED_SHARE = 0.01;

export interface PartRun {
  /** Wall seconds of the calibration run (tiny set, nothing changed): fixed cost per run. */
  fixed: number;
  benchFiles: number;
  realFiles: number;
  realBytes: number;
  realLargest: number;
  /** The rotating read-back's share of the reused bytes, in % (R2_SAMPLE_PERCENT). */
  samplePercent: number;
  /** Nights 1, 2, 3: wall, bytes hashed (read because new or changed), bytes read back from R2. */
  nights: { seconds: number; hashedBytes: number; readBackBytes: number }[];
}

export interface PartProjection {
  fixed: number;
  perFile: number;
  perByte: number;
  /** Projected wall seconds at the real size: nights 1, 2, 3 (typical sample), and nights 2, 3 on the worst sample night. */
  seconds: number[];
  worst: number[];
}

export function projectPart(p: PartRun): PartProjection {
  const [full, quiet] = p.nights;
  const perByte = Math.max(0, full.seconds - p.fixed) / Math.max(1, full.hashedBytes + full.readBackBytes);
  const perFile = Math.max(0, quiet.seconds - p.fixed - perByte * (quiet.hashedBytes + quiet.readBackBytes)) / Math.max(1, p.benchFiles);
  const base = p.fixed + perFile * p.realFiles;
  const sample = (p.realBytes * p.samplePercent) / 100;
  const worstSample = Math.max(sample, p.realLargest);
  const changed = 2 * p.realBytes * REAL_CHANGED_SHARE;
  return {
    fixed: p.fixed,
    perFile,
    perByte,
    seconds: [base + perByte * 2 * p.realBytes, base + perByte * sample, base + perByte * (changed + sample)],
    worst: [base + perByte * 2 * p.realBytes, base + perByte * worstSample, base + perByte * (changed + worstSample)],
  };
}

/** Bytes hashed by the project engine in one run (its "hashed N file(s), B bytes" lines). */
export function hashedBytes(stderr: string): number {
  return [...stderr.matchAll(/hashed \d+ file\(s\), (\d+) bytes/g)].reduce((a, m) => a + Number(m[1]), 0);
}
