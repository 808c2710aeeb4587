// Example values used in the "fix:" line of every config error, so the message is a command the
// operator can paste (after replacing the example value).

const EXAMPLES: Record<string, string> = {
  phase: "workshop-day",
  "stackRefs.idle": "idle",
  "stackRefs.month": "workshop-month",
  "verda.location": "FIN-01",
  "ssh.user": "root",
  "ssh.port": "22",
  "ssh.hostOverride": "127.0.0.1",
  "mello.mode": "hetzner",
  "mello.serverId": "12345678",
  "mello.name": "mello",
  "mello.serverType": "cax31",
  "mello.location": "hel1",
  "mello.address": "comfy.example.net",
  "mello.hostKey": "'ssh-ed25519 AAAAC3Nz... root@mello'   # ssh-keyscan -t ed25519 <mello>",
  "mello.sshSourceIps[0]": "203.0.113.7/32",
  "mello.dns.zoneId": "0123456789abcdef0123456789abcdef",
  "mello.dns.name": "comfy.example.net",
  "mello.dns.ttl": "60",
  "backups.mode": "managed",
  "backups.accountId": "0123456789abcdef0123456789abcdef",
  "backups.endpoint": "https://<account>.eu.r2.cloudflarestorage.com",
  "backups.lifecycle.cache.maxAgeDays": "90",
  "backups.lifecycle.userFiles.maxAgeDays": "90",
  "sshKeys.admin": "'ssh-ed25519 AAAAC3Nz... admin@laptop'",
  "sshKeys.mello": "'ssh-ed25519 AAAAC3Nz... dev@mello'",
  "watchdog.dayStack": "workshop-day",
  "sfs.sizeGb": "220",
  "sfs.location": "FIN-01",
  "sfs.protect": "true",
  "seed.loader": "true",
  "seed.instanceType": "CPU.4V.16G",
  "scratch.lifetime": "day",
  "scratch.sizeGb": "50",
  "gpu.instanceType": "1A100.22V",
  "gpu.image": "ubuntu-24.04-cuda-12.8-open-docker",
  "gpu.hostname": "comfyume-worker",
  "gpu.spot": "false",
  "gpu.hostPublicKey": "'ssh-ed25519 AAAAC3Nz... root@comfyume-worker'",
  "restore.expectedTailscaleIp": "100.64.0.12",
  "restore.redisHost": "100.64.0.2",
  "backup.cronSchedule": "'17 * * * *'",
  "backup.shrinkTolerance": "0.5",
  "backup.acceptShrink[0]": "<set name from the failure message>",
};

/** Per-environment keys (`environments.<env>.tailscale.ip`) share one example whatever the environment. */
const ENVIRONMENT_EXAMPLES: Record<string, string> = {
  loginKey: "\"$(cat ~/.ssh/comfyume_<env>_ed25519.pub)\"",
  loginKeyName: "PROD_comfyume",
  "tailscale.hostname": "comfyume-<env>-day",
  "tailscale.ip": "100.64.0.14",
};

export function exampleFor(path: string): string {
  const perEnvironment = /^environments\.[^.]+\.(.+)$/.exec(path)?.[1];
  if (perEnvironment && ENVIRONMENT_EXAMPLES[perEnvironment]) return ENVIRONMENT_EXAMPLES[perEnvironment];
  return EXAMPLES[path] ?? EXAMPLES[path.replace(/\[\d+\]/g, "[0]")] ?? "<value>";
}

export function setCommand(path: string, stack: string): string {
  const flag = path.includes(".") || path.includes("[") ? "--path " : "";
  // Testing rehearses on a cheap CPU instance: suggest one there.
  const example = path === "gpu.instanceType" && stack.includes("testing") ? "CPU.4V.16G" : exampleFor(path);
  return `scripts/pulumi config set ${flag}'comfyume:${path}' ${example} --stack ${stack}`;
}

export function secretSetCommand(key: string, stack: string, source: string): string {
  // Value from a file/stdin: never on the command line (shell history, process list).
  return `scripts/pulumi config set --secret 'comfyume:${key}' --stack ${stack} ${source}`;
}

export function removeCommand(fullKey: string, stack: string): string {
  const [ns, ...rest] = fullKey.split(":");
  const path = rest.join(":");
  const flag = path.includes(".") || path.includes("[") ? "--path " : "";
  return `scripts/pulumi config rm ${flag}'${ns}:${path}' --stack ${stack}`;
}
