// The fault table's judge: each safety invariant turns a row into FAIL with a reason.
import { describe, expect, it } from "vitest";
import { FAULTS } from "../../sim/rehearsal/faults/catalogue";
import type { FileEvidence, UserFile } from "../../sim/rehearsal/faults/evidence";
import { errorLines, faultTable, judge, type Attempt, type FaultRow } from "../../sim/rehearsal/faults/table";

const file = (p: string): UserFile => ({ host: "worker", path: p, sha256: "0".repeat(64), bytes: 1 });
const ev = (p: string, inR2: boolean, onVolume: boolean): FileEvidence => ({ file: file(p), inR2, onVolume });
const attempt = (o: Partial<Attempt>): Attempt => ({ ok: true, keyLine: "", errorLines: [], deletedInstance: false, files: [], vanished: [], hostLog: [], ms: 1, ...o });
const row = (faulted?: Attempt, retry?: Attempt): FaultRow => ({ fault: "f", phase: "nightly destroy", faulted, retry, notes: [], problems: [], ms: 1 });

describe("fault table: judge", () => {
  it("passes a clear error that converges once cleared, with every file safe", () => {
    const r = row(
      attempt({ ok: false, keyLine: "error: R2 unreachable", errorLines: ["error: R2 unreachable"], files: [ev("/a", false, true)] }),
      attempt({ ok: true, deletedInstance: true, files: [ev("/a", true, true)] }),
    );
    expect(judge(r, /unreachable/)).toEqual([]);
  });

  it("fails each broken invariant with its reason", () => {
    expect(judge(row(), /x/)).toEqual(["the fault was never injected (setup failed)"]);
    const deletedUnbacked = judge(row(attempt({ deletedInstance: true, files: [ev("/a", false, true)] })), /x/);
    expect(deletedUnbacked.join()).toMatch(/instance deleted without a verified backup of 1 file/);
    expect(judge(row(attempt({ files: [ev("/a", false, false)] })), /x/).join()).toMatch(/1 user file LOST/);
    expect(judge(row(attempt({ vanished: ["worker:/a"] })), /x/).join()).toMatch(/gone from the volume/);
    const vague = judge(row(attempt({ ok: false, keyLine: "exited with code 1", errorLines: ["exited with code 1"] }), attempt({})), /R2/);
    expect(vague.join()).toMatch(/does not name the cause/);
    const stuck = judge(row(attempt({ ok: false, errorLines: ["R2 down"] }), attempt({ ok: false, keyLine: "still down" })), /R2/);
    expect(stuck.join()).toMatch(/no convergence after clearing the fault: still down/);
    const advice = judge(row(attempt({ ok: false, errorLines: ["instance is gone; drop it with `pulumi state delete <urn>`"] }), attempt({})), /gone/, /pulumi state delete/);
    expect(advice.join()).toMatch(/advises "pulumi state delete"/);
    // Warning against it is not advice.
    const gone = FAULTS.find((f) => f.name === "instance deleted out of band")!;
    const warned = "Destroy stopped: the worker instance i-1 no longer exists at Verda (404). Do NOT `pulumi state delete` the backup hook.";
    expect(judge(row(attempt({ ok: false, errorLines: [warned] }), attempt({})), gone.cause, gone.forbidden)).toEqual([]);
  });

  it("takes the scripts' failure line as the key line, skips the engine's generic lines, and renders FAIL rows", () => {
    const { keyLine, lines } = errorLines("error: update failed\n  error: remote delete command exited with code 1\n[backup-mello.sh] FAILED in step 'inputs': upload to r2:b/p failed\n");
    expect(keyLine).toBe("[backup-mello.sh] FAILED in step 'inputs': upload to r2:b/p failed");
    expect(lines).not.toContain("error: update failed");
    const r = { ...row(attempt({ deletedInstance: true, files: [ev("/a", false, true)] })), problems: ["x"] };
    expect(faultTable([r])).toMatch(/^FAIL \| f\s+\| nightly destroy \| yes/m);
  });
});
