// Accounts the real time spent waiting on the simulated cloud: any instance ordered, provisioning
// or deleting, any volume being created, attached or detached, and simulated hosts booting
// (first-boot script, sshd start). Overlapping waits count once (a union of intervals), so the
// figure can be compared with a phase's wall time.
import type { SimState } from "../simulator";

const INSTANCE_WAIT = new Set(["ordered", "provisioning", "deleting"]);
const VOLUME_WAIT = new Set(["ordered", "attaching", "detaching"]);

export interface CloudWaits {
  /** Union of all waits below, in ms. */
  totalMs: number;
  instanceMs: number;
  volumeMs: number;
  bootMs: number;
}

export class WaitMeter {
  private last = Date.now();
  private readonly w: CloudWaits = { totalMs: 0, instanceMs: 0, volumeMs: 0, bootMs: 0 };

  /** Called on every poll with the simulator's state and how many hosts are booting right now. */
  sample(state: SimState, booting: number): void {
    const now = Date.now();
    const dt = now - this.last;
    this.last = now;
    const inst = state.instances.some((i) => INSTANCE_WAIT.has(i.status));
    const vol = state.volumes.some((v) => VOLUME_WAIT.has(v.status));
    const boot = booting > 0;
    if (inst) this.w.instanceMs += dt;
    if (vol) this.w.volumeMs += dt;
    if (boot) this.w.bootMs += dt;
    if (inst || vol || boot) this.w.totalMs += dt;
  }

  snapshot(): CloudWaits {
    return { ...this.w };
  }
}
