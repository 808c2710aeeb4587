// The end-of-day watchdog on mello (docs/money.md): uploads the host scripts and installs the
// systemd timer (removed again when the resource goes, i.e. watchdog.enabled turned off) that tears a forgotten day stack down at the cutoff through
// the same verified destroy. Secrets (Redis password, webhook URL) travel on stdin.
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand } from "../infra/remote";
import { watchdogInstall } from "../infra/money/watchdog-install";
import type { WatchdogSettings } from "../infra/money/settings";
import { HostScripts } from "./host-scripts";
import { commandDeadline, connectionArgs, type SshTarget } from "./remote";

export interface WatchdogArgs {
  settings: WatchdogSettings;
  mello: SshTarget;
  /** Where the scripts land on mello (host/ and lib/). */
  scriptsDir: string;
  redisPassword?: pulumi.Input<string>;
}

const INSTALL_SECONDS = 300;

export class Watchdog extends pulumi.ComponentResource {

  constructor(name: string, args: WatchdogArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:mello:Watchdog", name, {}, opts);
    const scripts = new HostScripts(
      `${name}-scripts`,
      { target: args.mello, remoteDir: args.scriptsDir, scripts: ["watchdog.sh", "install-watchdog.sh"] },
      { parent: this },
    );
    const plan = watchdogInstall(args.settings, { scriptsDir: args.scriptsDir, redisHost: "127.0.0.1" });
    const stdin = pulumi
      .all([pulumi.output(args.redisPassword ?? ""), pulumi.output(plan.stdin)])
      .apply(([password, rest]) => (password ? `REDISCLI_AUTH=${password}\n` : "") + rest);
    new RemoteCommand(
      `${name}-install`,
      {
        connection: connectionArgs(args.mello),
        create: `timeout -k 30 ${INSTALL_SECONDS} ${plan.command}`,
        // Removing the idle stack's watchdog must not leave a timer that destroys stacks.
        delete: `timeout -k 30 ${INSTALL_SECONDS} ${plan.disableCommand} </dev/null`,
        stdin: pulumi.secret(stdin),
        logging: "stderr",
        timeoutSeconds: commandDeadline(INSTALL_SECONDS),
      },
      { parent: this, dependsOn: [scripts] },
    );
    this.registerOutputs({});
  }
}
