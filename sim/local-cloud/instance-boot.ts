// What happens when Verda reports an instance `running`: a fresh cloud image (own SSH host key),
// the SSH keys registered for it, its attached volumes, its first-boot startup script (run for
// real in the host's namespace, with the shims), then sshd and the ComfyUI stand-in come up.
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import type { InstanceView, SimState } from "../simulator";
import { VerdaClient } from "../../infra/verda/client";
import { shellQuote } from "./shell";
import { prepareHost, runOnHost, startSimHost, type SimHost } from "./sim-host";
import { startComfyUiStandIn } from "./stand-ins";
import type { VolumeStore } from "./volumes";

export interface BootContext {
  dir: string;
  api: VerdaClient;
  volumes: VolumeStore;
  state: () => SimState;
  sshPort: number;
  comfyUiPort: number;
  startupScriptTimeoutMs: number;
  log: (line: string) => void;
}

export async function bootInstance(ctx: BootContext, view: InstanceView): Promise<SimHost> {
  const ip = view.ip;
  if (!ip) throw new Error(`instance ${view.id} is running without an IP`);
  const d = prepareHost(path.join(ctx.dir, view.id), view.hostname);
  const keys = await Promise.all(view.ssh_key_ids.map((id) => ctx.api.getSshKey(id)));
  const authorized = keys.flatMap((k) => (k?.key ? [k.key] : []));
  const state = ctx.state();
  ctx.volumes.sync(state.volumes);
  ctx.volumes.attachToHost(view.id, d, state.volumes);

  if (view.startup_script_id) {
    const script = await ctx.api.getStartupScript(view.startup_script_id);
    if (script?.script) {
      const file = path.join(d.state, "startup-script.sh");
      writeFileSync(file, script.script, { mode: 0o700 });
      const started = Date.now();
      const code = await runOnHost(d, ip, `bash ${shellQuote(file)}`, ctx.startupScriptTimeoutMs, path.join(d.state, "startup-script.log"));
      ctx.log(`instance ${view.hostname}: startup script exited ${code} after ${Date.now() - started} ms (log ${path.join(d.state, "startup-script.log")})`);
    }
  }
  const comfyUi = await startComfyUiStandIn(ip, ctx.comfyUiPort, d.state);
  const host = await startSimHost(d, ip, ctx.sshPort, authorized, [comfyUi]);
  ctx.log(`instance ${view.hostname} (${view.id}) up: ssh ${ip}:${host.port}, host key ${host.hostKey.slice(0, 40)}...`);
  return host;
}
