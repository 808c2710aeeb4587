// SSH keys and startup scripts. Create answers a bare id; GET by id answers a one-element array
// as both official SDKs expect (verda-api.md §10.2).
import { createHash, randomUUID } from "node:crypto";
import { bodyObject, empty, fail, ok, type ApiResponse } from "./http";
import type { Sim } from "./state";
import type { Schemas } from "./types";

const SCRIPT_QUOTA = 100;

/** MD5 colon-hex of the key blob, as `ssh-keygen -E md5`; null when unparsable. */
export function md5Fingerprint(publicKey: string): string | null {
  const blob = publicKey.trim().split(/\s+/)[1];
  if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return null;
  const bytes = Buffer.from(blob, "base64");
  if (bytes.length < 16) return null;
  return createHash("md5").update(bytes).digest("hex").match(/../g)!.join(":");
}

function keyView(sim: Sim, id: string): Schemas["GetKeysResponseDto"] {
  const k = sim.sshKeys.get(id)!;
  return { id: k.id, name: k.name, key: k.key, fingerprint: k.fingerprint, created_by_user_id: null };
}

export function listKeys(sim: Sim): ApiResponse {
  return ok([...sim.sshKeys.keys()].map((id) => keyView(sim, id)));
}

export function getKey(sim: Sim, id: string): ApiResponse {
  if (!sim.sshKeys.has(id)) throw fail.notFound("SSH key not found");
  return ok([keyView(sim, id)]);
}

export function addKey(sim: Sim, body: unknown): { id: string } {
  const b = bodyObject(body);
  if (typeof b.name !== "string" || b.name.trim() === "") throw fail.badRequest("name is required");
  if (typeof b.key !== "string" || b.key.trim() === "") throw fail.badRequest("key is required");
  const id = randomUUID();
  sim.sshKeys.set(id, { id, name: b.name, key: b.key.trim(), fingerprint: md5Fingerprint(b.key), created_at: sim.clock.iso() });
  return { id };
}

export function deleteKeys(sim: Sim, ids: string[]): ApiResponse {
  for (const id of ids) if (!sim.sshKeys.has(id)) throw fail.notFound(`SSH key not found: ${id}`);
  for (const id of ids) sim.sshKeys.delete(id);
  return empty(200);
}

export function idsField(body: unknown, field: string): string[] {
  const v = bodyObject(body)[field];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw fail.badRequest(`${field} must be an array of ids`);
  return v as string[];
}

// ---------------------------------------------------------------- startup scripts

function scriptView(sim: Sim, id: string): Schemas["GetScriptResponseDto"] {
  const s = sim.scripts.get(id)!;
  return { id: s.id, name: s.name, script: s.script, created_at: s.created_at };
}

export function listScripts(sim: Sim, query: URLSearchParams): ApiResponse {
  const name = query.get("name");
  const desc = (query.get("orderDirection") ?? "desc") !== "asc";
  const all = [...sim.scripts.values()]
    .filter((s) => !name || s.name.toLowerCase().includes(name.toLowerCase()))
    .sort((a, b) => (desc ? b.seq - a.seq : a.seq - b.seq));
  const paged = query.has("page") || query.has("pageSize");
  if (!paged) return ok(all.map((s) => scriptView(sim, s.id)));
  const page = Math.max(1, Math.floor(Number(query.get("page") ?? 1)) || 1);
  const pageSize = Math.min(100, Math.max(1, Math.floor(Number(query.get("pageSize") ?? 10)) || 10));
  const slice = all.slice((page - 1) * pageSize, page * pageSize);
  return {
    status: 200,
    json: slice.map((s) => scriptView(sim, s.id)),
    headers: { "X-Page": String(page), "X-Page-Size": String(pageSize), "X-Total-Count": String(all.length) },
  };
}

export function getScript(sim: Sim, id: string): ApiResponse {
  if (!sim.scripts.has(id)) throw fail.notFound("Startup script not found");
  return ok([scriptView(sim, id)]);
}

export function addScript(sim: Sim, body: unknown): { id: string } {
  const b = bodyObject(body);
  if (typeof b.name !== "string" || b.name.trim() === "") throw fail.badRequest("name is required");
  if (typeof b.script !== "string") throw fail.badRequest("script is required");
  if (sim.scripts.size >= SCRIPT_QUOTA) throw fail.badRequest(`Startup script quota exceeded (${SCRIPT_QUOTA})`);
  const id = randomUUID();
  sim.scripts.set(id, { id, name: b.name, script: b.script, created_at: sim.clock.iso(), seq: ++sim.scriptSeq });
  return { id };
}

export function deleteScripts(sim: Sim, ids: string[]): ApiResponse {
  for (const id of ids) if (!sim.scripts.has(id)) throw fail.notFound(`Startup script not found: ${id}`);
  for (const id of ids) sim.scripts.delete(id);
  return empty(200);
}
