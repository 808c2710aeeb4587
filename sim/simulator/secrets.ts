// Serverless secrets, file secrets and registry credentials: write-only stores keyed by name. Lists show
// names (and file names) only; values stay in memory and appear in no view, state snapshot or log line.
import { bodyObject, empty, fail, ok, type ApiResponse } from "./http";
import type { Sim } from "./state";
import type { Schemas } from "./types";

export interface SecretRecord {
  name: string;
  created_at: string;
  /** Kept for a replica stand-in; never rendered. */
  value: string;
}

export interface FileSecretRecord {
  name: string;
  created_at: string;
  files: Array<{ file_name: string; base64_content: string }>;
}

export interface RegistryCredentialsRecord {
  name: string;
  created_at: string;
  type: Schemas["CreateRegistryCredentialsPublicApiDto"]["type"];
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const REGISTRY_TYPES: readonly string[] = ["verda", "gcr", "dockerhub", "ghcr", "aws-ecr", "scaleway", "custom"];

function nameOf(b: Record<string, unknown>, what: string): string {
  const name = b.name;
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw fail.badRequest(`${what} name must be 1-63 lowercase letters, digits or '-' (not at either end)`);
  }
  return name;
}

function conflict(what: string, name: string): ApiResponse {
  return { status: 409, json: { code: "conflict", message: `${what} ${name} already exists` } };
}

export function listSecrets(sim: Sim): ApiResponse {
  const generic = [...sim.secrets.values()].map((s): Schemas["GetSecretsPublicApiResponseDto"] => ({ name: s.name, created_at: s.created_at, secret_type: "generic" }));
  const files = [...sim.fileSecrets.values()].map((s): Schemas["GetSecretsPublicApiResponseDto"] => ({ name: s.name, created_at: s.created_at, secret_type: "file-secret" }));
  return ok([...generic, ...files]);
}

export function addSecret(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  const name = nameOf(b, "Secret");
  if (typeof b.value !== "string" || b.value === "") throw fail.badRequest("value is required");
  if (sim.secrets.has(name) || sim.fileSecrets.has(name)) return conflict("Secret", name);
  sim.secrets.set(name, { name, created_at: sim.clock.iso(), value: b.value });
  return empty(201);
}

export function listFileSecrets(sim: Sim): ApiResponse {
  return ok(
    [...sim.fileSecrets.values()].map((s): Schemas["GetFilesetSecretsPublicApiResponseDto"] => ({
      name: s.name,
      created_at: s.created_at,
      secret_type: "file-secret",
      file_names: s.files.map((f) => f.file_name),
    })),
  );
}

export function addFileSecret(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  const name = nameOf(b, "File secret");
  const files = b.files;
  if (!Array.isArray(files) || files.length === 0) throw fail.badRequest("files must be a non-empty array");
  const parsed = files.map((f) => {
    const file = bodyObject(f);
    if (typeof file.file_name !== "string" || file.file_name === "" || file.file_name.includes("/")) throw fail.badRequest("file_name must be a plain file name");
    if (typeof file.base64_content !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(file.base64_content)) throw fail.badRequest(`base64_content of ${file.file_name} is not base64`);
    return { file_name: file.file_name, base64_content: file.base64_content };
  });
  if (sim.secrets.has(name) || sim.fileSecrets.has(name)) return conflict("Secret", name);
  sim.fileSecrets.set(name, { name, created_at: sim.clock.iso(), files: parsed });
  return empty(201);
}

export function listRegistryCredentials(sim: Sim): ApiResponse {
  return ok([...sim.registryCredentials.values()].map((c): Schemas["GetRegistryCredentialsPublicApiResponseDto"] => ({ name: c.name, created_at: c.created_at })));
}

export function addRegistryCredentials(sim: Sim, body: unknown): ApiResponse {
  const b = bodyObject(body);
  const name = nameOf(b, "Registry credentials");
  if (typeof b.type !== "string" || !REGISTRY_TYPES.includes(b.type)) throw fail.badRequest(`type must be one of ${REGISTRY_TYPES.join(", ")}`);
  if ((b.type === "dockerhub" || b.type === "ghcr") && (typeof b.username !== "string" || typeof b.access_token !== "string")) {
    throw fail.badRequest(`${b.type} credentials need username and access_token`);
  }
  if (sim.registryCredentials.has(name)) return conflict("Registry credentials", name);
  sim.registryCredentials.set(name, { name, created_at: sim.clock.iso(), type: b.type as RegistryCredentialsRecord["type"] });
  return empty(201);
}

/** Deployments that use a secret (env or secret mount) or registry credentials of this name. */
function usersOf(sim: Sim, kind: "secret" | "registry", name: string): string[] {
  return [...sim.deployments.values()]
    .filter((d) =>
      kind === "registry"
        ? d.container_registry_settings.is_private && d.container_registry_settings.credentials?.name === name
        : d.containers.some(
            (c) => (c.env ?? []).some((e) => e.type === "secret" && e.value_or_reference_to_secret === name) || (c.volume_mounts ?? []).some((m) => m.type === "secret" && "secret_name" in m && m.secret_name === name),
          ),
    )
    .map((d) => d.name);
}

/** DELETE by name: refused while a deployment uses it unless `?force=true` (the document's rule). */
export function deleteFromStore(sim: Sim, store: "secrets" | "fileSecrets" | "registryCredentials", name: string, query: URLSearchParams): ApiResponse {
  const map = sim[store] as Map<string, unknown>;
  if (!map.has(name)) throw fail.notFound(`Not found: ${name}`);
  const users = usersOf(sim, store === "registryCredentials" ? "registry" : "secret", name);
  if (users.length > 0 && query.get("force") !== "true") {
    throw fail.badRequest(`${name} is used by deployment(s) ${users.join(", ")}; remove it from them first (or force=true)`);
  }
  map.delete(name);
  return empty(200);
}
