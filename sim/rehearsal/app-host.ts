// `npm run rehearse -- --app-on-verda`: the app on a Verda CPU instance the month owns. What the
// cycle checks on it: it runs and its hourly backup cron works (month up), the day's worker reached
// Redis there (day up), the users' files live on it (activity), and the month's destroy backed them
// up to R2, read back, before the instance went (month destroy).
import type { LocalCloud } from "../local-cloud";
import { verifyInR2, type WorkFile } from "./activity";
import type { SshHost } from "./hosts";
import { latestManifestKey, type BackupSet } from "./r2-readback";
import type { AppOnVerda } from "./stack-files";

/** The app host's seeded backup set (a second identity in the cache bucket) and its hostname for testing-month. */
export const APP_BACKUP_SET = "comfyume-testing-app";
export const APP_HOSTNAME = "comfyume-testing-app";
/** The sets the app host's hook writes (components/app-host-backup.ts: prefix `app`, dirs of appSettings). */
export const APP_SETS = ["user_data", "outputs"];

const fail = (what: string): never => {
  throw new Error(what);
};

/** The seeded identity the app host restores (local cloud started with two backup sets). */
export function appIdentity(cloud: LocalCloud): AppOnVerda {
  const id = cloud.seed.identities.find((i) => i.backupSet === APP_BACKUP_SET) ?? fail(`no seeded backup set ${APP_BACKUP_SET}`);
  return { backupSet: id.backupSet, tailscaleIp: id.tailscaleIp };
}

/** The running app host (exactly one) and its SSH address. */
export function appHost(cloud: LocalCloud): SshHost & { id: string; ip: string } {
  const live = cloud.verda.state().instances.filter((i) => i.hostname === APP_HOSTNAME && i.status === "running");
  if (live.length !== 1) fail(`exactly one running app host ${APP_HOSTNAME} (found ${live.length})`);
  const host = cloud.instances().get(live[0].id) ?? fail(`no SSH host for the app host ${live[0].id}`);
  return { id: live[0].id, ip: host.host, host: host.host, port: host.port, hostKey: host.hostKey };
}

/** Month up: the app is started (Redis answers on the app host) and the hourly cron makes a snapshot. */
export async function checkAppHostUp(cloud: LocalCloud): Promise<string[]> {
  const app = appHost(cloud);
  const calls = await cloud.exec(app.id, "cat /var/lib/comfyume-sim/calls.log");
  if (!/docker compose .* up -d .*redis/.test(calls.out)) fail(`the app was not started with docker compose on ${APP_HOSTNAME}`);
  const before = await cloud.exec(app.id, `cat /mnt/sfs/cache/backups/${APP_BACKUP_SET}/latest`);
  await new Promise((r) => setTimeout(r, 1100)); // a new second: a changed snapshot gets a new stamp
  await cloud.exec(app.id, "echo rehearsal >> /home/dev/comfyume-v1/README.md");
  const runs = await cloud.runCronJobs(app.id);
  if (runs.length === 0 || runs.some((r) => r.code !== 0)) fail(`the app host's hourly backup cron ran ok (${JSON.stringify(runs)})`);
  const after = await cloud.exec(app.id, `cat /mnt/sfs/cache/backups/${APP_BACKUP_SET}/latest`);
  if (after.out.trim() === before.out.trim()) fail("the hourly cron wrote a new snapshot of the app host into the SFS cache");
  return [
    `app host ${app.id.slice(0, 8)} (${APP_HOSTNAME}, CPU.8V.32G) restored from the SFS cache and started (docker compose up)`,
    `its hourly backup cron ran: snapshot ${after.out.trim()} in the SFS cache`,
  ];
}

/** Day up: the worker's restore found Redis at the app host's address (its restore log says so). */
export async function checkWorkerUsedAppRedis(cloud: LocalCloud, workerId: string): Promise<string> {
  const app = appHost(cloud);
  const log = await cloud.exec(workerId, "cat /var/log/comfyume/restore-instance.last.log");
  if (!log.out.includes(`Redis at ${app.ip}:`)) fail(`the worker checked Redis on the app host ${app.ip} (restore log: ${log.out.split("\n").filter((l) => l.includes("Redis")).join(" | ")})`);
  return `the worker's restore reached Redis on the app host (${app.ip}), not on mello`;
}

/** The app host's sets in the user-files bucket. */
export function appSets(cloud: LocalCloud): BackupSet[] {
  return APP_SETS.map((d) => ({ name: `app/${d}`, bucket: cloud.s3.buckets.userFiles, prefix: `app/${d}` }));
}

/**
 * Month destroy: the app host is gone, and its users' files are in R2 under new manifests written by
 * its hook (each file's object read back and hashed).
 */
export function checkAppBackedUp(cloud: LocalCloud, appId: string, before: Map<string, string | undefined>, files: WorkFile[], dataDir: string): string[] {
  if (cloud.verda.state().instances.some((i) => i.id === appId)) fail("the app host was deleted");
  const stale = appSets(cloud).filter((s) => {
    const key = latestManifestKey(cloud, s);
    return !key || key === before.get(s.name);
  });
  if (stale.length) fail(`the app host's hook wrote new manifests for ${stale.map((s) => s.name).join(", ")}`);
  const appFiles = files.filter((f) => f.host === "mello");
  const problems = verifyInR2(cloud, appFiles, dataDir);
  if (problems.length) fail(`the app host's files in R2: ${problems.join("; ")}`);
  return [`app host's backup-before-delete ran: ${appFiles.length} user files in R2 (new manifests, objects read back, SHA-256)`, "then the app host was deleted"];
}
