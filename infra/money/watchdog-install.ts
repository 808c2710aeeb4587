// The command line that installs the mello watchdog from `comfyume:watchdog` settings, for the
// idle stack to run over SSH (RemoteCommand) after copying scripts/ to mello. Secrets (the Redis
// password, the webhook URL) go on stdin, never in the command line.
import type { WatchdogSettings } from "./settings";

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface WatchdogInstall {
  /** Run on mello from the directory holding scripts/ (e.g. the checkout). */
  command: string;
  /** KEY=value lines for the command's stdin (secret). */
  stdin: string;
  /** Removes the timer (when watchdog.enabled is false). */
  disableCommand: string;
}

export function watchdogInstall(w: WatchdogSettings, opts: { scriptsDir: string; redisHost?: string; redisPort?: number; redisPassword?: string }): WatchdogInstall {
  const settings: Record<string, string | undefined> = {
    WATCHDOG_CUTOFF: w.cutoff,
    WATCHDOG_MORNING: w.morning,
    WATCHDOG_TZ: w.timezone,
    WATCHDOG_IDLE_MINUTES: String(w.idleMinutes),
    WATCHDOG_GRACE_MINUTES: String(w.cutoffGraceMinutes),
    WATCHDOG_QUEUE_KEY: w.queueKey,
    WATCHDOG_DAY_STACK: w.dayStack,
    WATCHDOG_WORKDIR: w.checkoutDir,
    WATCHDOG_TEARDOWN_CMD: w.teardownCommand,
    WATCHDOG_ACTIVE_OUTPUT: w.activeOutput,
    REDIS_HOST: opts.redisHost,
    REDIS_PORT: opts.redisPort === undefined ? undefined : String(opts.redisPort),
  };
  const sets = Object.entries(settings)
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `--set ${shellQuote(`${k}=${v}`)}`);
  const script = `${opts.scriptsDir.replace(/\/+$/, "")}/host/install-watchdog.sh`;
  const stdin = [opts.redisPassword ? `REDISCLI_AUTH=${opts.redisPassword}` : "", w.webhookUrl ? `WATCHDOG_WEBHOOK_URL=${w.webhookUrl}` : ""].filter(Boolean).join("\n");
  return {
    command: `bash ${shellQuote(script)} --interval-minutes ${w.intervalMinutes} ${sets.join(" ")}`,
    stdin: stdin ? `${stdin}\n` : "",
    disableCommand: `bash ${shellQuote(script)} --disable`,
  };
}
