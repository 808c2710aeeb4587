// What happens when Verda reports an instance `running`: a fresh machine (own SSH host keys), the
// SSH keys registered for it, its attached volumes, its first-boot startup script (run to
// completion, as root, on the machine), then the image's sshd and the ComfyUI stand-in come up.
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import type { InstanceView, SimState } from "../simulator";
import { VerdaClient } from "../../infra/verda/client";
import { authorizeKeys, prepareHost, startSimHost, type MachineImage, type SimHost } from "./sim-host";
import { serviceRunning, startComfyUiStandIn, startRedisStandIn } from "./stand-ins";
import type { VolumeStore } from "./volumes";

export interface BootContext {
  dir: string;
  api: VerdaClient;
  volumes: VolumeStore;
  image: MachineImage;
  state: () => SimState;
  sshPort: number;
  comfyUiPort: number;
  /** Each instance's "Redis" (an app host's), answering once compose started the service `redis`. */
  redis: { port: number; password: string };
  startupScriptTimeoutMs: number;
  log: (line: string) => void;
}

export async function bootInstance(ctx: BootContext, view: InstanceView): Promise<SimHost> {
  const ip = view.ip;
  if (!ip) throw new Error(`instance ${view.id} is running without an IP`);
  const started = Date.now();
  const m = await prepareHost(path.join(ctx.dir, view.id), view.hostname, ip, ctx.image);
  try {
    const keys = await Promise.all(view.ssh_key_ids.map((id) => ctx.api.getSshKey(id)));
    authorizeKeys(m, keys.flatMap((k) => (k?.key ? [k.key] : [])));
    const state = ctx.state();
    ctx.volumes.sync(state.volumes);
    ctx.volumes.attachToHost(view.id, m.dirs, state.volumes);

    if (view.startup_script_id) {
      const script = await ctx.api.getStartupScript(view.startup_script_id);
      if (script?.script) {
        writeFileSync(path.join(m.dirs.state, "startup-script.sh"), script.script, { mode: 0o700 });
        const t = Date.now();
        const r = await m.exec("bash /var/lib/comfyume-sim/startup-script.sh", { timeoutMs: ctx.startupScriptTimeoutMs });
        const log = path.join(m.dirs.state, "startup-script.log");
        writeFileSync(log, r.out);
        ctx.log(`instance ${view.hostname}: startup script exited ${r.code} after ${Date.now() - t} ms (log ${log})`);
      }
    }
  } catch (err) {
    ctx.volumes.detachHost(m.dirs);
    await m.close();
    throw err;
  }
  const comfyUi = await startComfyUiStandIn(ip, ctx.comfyUiPort, m.dirs.state);
  const redis = await startRedisStandIn(ip, ctx.redis.port, ctx.redis.password, () => serviceRunning(m.dirs.state, "redis"));
  const host = await startSimHost(m, ip, ctx.sshPort, [comfyUi, redis]);
  ctx.log(`instance ${view.hostname} (${view.id}) up in ${Date.now() - started} ms: ssh ${ip}:${host.port}, host key ${host.hostKey.slice(0, 40)}...`);
  return host;
}
