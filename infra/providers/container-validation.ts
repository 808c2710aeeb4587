// check() of ContainerDeployment: every failure names the property and the fix, before any API call.
// Preview unknowns are skipped. Plain environment variables with sensitive-looking names are refused:
// secrets go to a `Secret` and are referenced through `secretEnv` (never plain env).
import { type ContainerInput, type DeploymentShape, MEMORY_SIZES_MB, type MountInput } from "./container-shape";
import { type CheckFailure, UNKNOWN } from "./shared";

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SENSITIVE_ENV_RE = /TOKEN|SECRET|PASSW|API_?KEY|PRIVATE|CREDENTIAL|AUTH/i;

/** True for environment variable names that must go through a Verda secret, never plain env. */
export function looksSensitive(envName: string): boolean {
  return SENSITIVE_ENV_RE.test(envName);
}

const known = (value: unknown) => value !== UNKNOWN;
const wholeNumber = (value: unknown, min: number) => typeof value === "number" && Number.isInteger(value) && value >= min;

function checkMount(property: string, m: MountInput, failures: CheckFailure[]): void {
  if (!m || !known(m)) return;
  if (known(m.path) && m.path !== undefined && (typeof m.path !== "string" || !m.path.startsWith("/"))) {
    failures.push({ property, reason: `${property}.path must be an absolute path, e.g. "/mnt/sfs"` });
  }
  switch (m.type) {
    case "scratch":
      return;
    case "memory":
      if (known(m.sizeMb) && !MEMORY_SIZES_MB.includes(m.sizeMb)) failures.push({ property, reason: `${property}.sizeMb must be one of ${MEMORY_SIZES_MB.join(", ")}` });
      return;
    case "shared":
      if (known(m.volumeId) && (typeof m.volumeId !== "string" || m.volumeId === "")) failures.push({ property, reason: `${property}.volumeId is required: the SFS volume id (Volume.volumeId)` });
      return;
    case "secret":
      if (known(m.secretName) && (typeof m.secretName !== "string" || m.secretName === "")) failures.push({ property, reason: `${property}.secretName is required: a FileSecret's verdaName` });
      return;
    default:
      failures.push({ property, reason: `${property}.type must be scratch, memory, shared or secret` });
  }
}

function checkContainer(property: string, c: ContainerInput, failures: CheckFailure[]): void {
  if (!c || !known(c)) return;
  if (known(c.image) && (typeof c.image !== "string" || c.image.trim() === "")) failures.push({ property: `${property}.image`, reason: `${property}.image is required, e.g. "ghcr.io/owner/worker:v1"` });
  if (known(c.port) && !(wholeNumber(c.port, 1) && c.port <= 65535)) failures.push({ property: `${property}.port`, reason: `${property}.port must be a port number (1-65535), e.g. 8188` });
  const plain = c.env && known(c.env) ? Object.keys(c.env) : [];
  for (const name of plain) {
    if (looksSensitive(name)) {
      failures.push({ property: `${property}.env`, reason: `${property}.env.${name} looks sensitive: store it in a verda.Secret and reference it as secretEnv: { ${name}: secret.verdaName } (never plain env)` });
    }
  }
  const secret = c.secretEnv && known(c.secretEnv) ? c.secretEnv : {};
  for (const [name, ref] of Object.entries(secret)) {
    if (plain.includes(name)) failures.push({ property: `${property}.secretEnv`, reason: `${name} is set both in env and secretEnv; keep only the secretEnv entry` });
    if (known(ref) && (typeof ref !== "string" || ref === "")) failures.push({ property: `${property}.secretEnv`, reason: `${property}.secretEnv.${name} must be a Secret's verdaName` });
  }
  if (c.mounts && known(c.mounts)) c.mounts.forEach((m, i) => checkMount(`${property}.mounts[${i}]`, m, failures));
}

export function validateDeployment(d: DeploymentShape): CheckFailure[] {
  const failures: CheckFailure[] = [];
  if (known(d.name) && (typeof d.name !== "string" || !NAME_RE.test(d.name))) {
    failures.push({ property: "name", reason: `name ${JSON.stringify(d.name)} must be 1-63 lowercase letters, digits or '-' (not at either end), e.g. "comfyume-h200-spot"` });
  }
  if (known(d.compute)) {
    if (!d.compute || typeof d.compute.name !== "string" || d.compute.name === "") failures.push({ property: "compute", reason: 'compute.name is required, e.g. { name: "H200", size: 1 }' });
    else if (known(d.compute.size) && !wholeNumber(d.compute.size, 1)) failures.push({ property: "compute", reason: "compute.size must be a whole number of GPUs ≥ 1" });
  }
  if (known(d.containers)) {
    if (!Array.isArray(d.containers) || d.containers.length === 0) failures.push({ property: "containers", reason: "containers must list at least one container" });
    else d.containers.forEach((c, i) => checkContainer(`containers[${i}]`, c, failures));
  }
  const s = d.scaling;
  if (known(s)) {
    if (!s || !known(s.minReplicas) || !known(s.maxReplicas)) {
      if (!s) failures.push({ property: "scaling", reason: "scaling is required: { minReplicas, maxReplicas }" });
    } else if (!wholeNumber(s.minReplicas, 0) || !wholeNumber(s.maxReplicas, 0) || s.minReplicas > s.maxReplicas) {
      failures.push({ property: "scaling", reason: `scaling.minReplicas (${s.minReplicas}) and maxReplicas (${s.maxReplicas}) must be whole numbers with 0 ≤ min ≤ max` });
    }
  }
  return failures;
}
