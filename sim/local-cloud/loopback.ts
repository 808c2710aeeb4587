// Loopback addresses for simulated hosts: mello gets .2, instances .10 upwards. An address is
// reused only after its instance is gone, like a cloud recycling public IPs.
export const MELLO_HOST_OCTET = 2;
const FIRST_INSTANCE_OCTET = 10;
const LAST_INSTANCE_OCTET = 250;

export class LoopbackPool {
  private readonly inUse = new Set<string>();
  private next = FIRST_INSTANCE_OCTET;

  constructor(private readonly net: string) {
    if (!/^127\.\d{1,3}\.\d{1,3}$/.test(net)) throw new Error(`loopbackNet '${net}' must be three octets inside 127.0.0.0/8, e.g. 127.0.0`);
  }

  melloAddress(): string {
    return `${this.net}.${MELLO_HOST_OCTET}`;
  }

  /** The next free address, round-robin so a just-released one is not handed out at once. */
  allocate(): string {
    const span = LAST_INSTANCE_OCTET - FIRST_INSTANCE_OCTET + 1;
    for (let i = 0; i < span; i++) {
      const octet = FIRST_INSTANCE_OCTET + ((this.next - FIRST_INSTANCE_OCTET + i) % span);
      const ip = `${this.net}.${octet}`;
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip);
        this.next = octet + 1;
        return ip;
      }
    }
    throw new Error(`no free loopback address left in ${this.net}.${FIRST_INSTANCE_OCTET}-${LAST_INSTANCE_OCTET}`);
  }

  release(ip: string): void {
    this.inUse.delete(ip);
  }
}
