// Validates requests and responses against Verda's OpenAPI 3.1 document with Ajv (JSON Schema
// 2020-12 + formats). Every function returns a list of human-readable violations; empty = conforms.
//
//   validateRequest("POST", "/v1/instances", body)            -> string[]
//   validateResponse("GET", "/v1/instances/abc", 200, json)   -> string[]
//   validateExchange({ method, url, status, requestBody, responseBody, ... }) -> string[]
//
// Requests are checked strictly (unknown body fields and query parameters are violations, so a
// misspelt field is caught); responses tolerantly (extra fields are fine, as the document asks).
// The accepted deviations are listed, with reasons, in ./openapi-allowlist.ts.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { ALLOWLIST, type ResponsePatch, type SchemaPatch } from "./openapi-allowlist";

export { ALLOWLIST } from "./openapi-allowlist";

type Json = Record<string, unknown>;

const REPO_ROOT = resolve(__dirname, "../..");
const ROOT_ID = "verda-openapi";
const METHODS = ["get", "put", "post", "delete", "patch"] as const;
/** Statuses every endpoint may answer with a {code, message} body (document sections "Errors", "Rate Limits"). */
const GLOBAL_ERROR_STATUSES = new Set([400, 401, 402, 403, 404, 409, 429, 500, 503]);

export function openApiPath(): string {
  return process.env.VERDA_OPENAPI ? resolve(process.env.VERDA_OPENAPI) : resolve(REPO_ROOT, "api/verda/openapi.json");
}

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  literalSegments: number;
  op: Json;
}

interface Loaded {
  doc: Json;
  operations: Operation[];
  requestAjv: Ajv2020;
  responseAjv: Ajv2020;
  cache: Map<string, ValidateFunction>;
}

let loaded: Loaded | undefined;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** Rewrites refs to the shared root, reads `nullable`, and (for requests) closes objects. */
function transform(node: unknown, mode: "request" | "response"): unknown {
  if (Array.isArray(node)) return node.map((n) => transform(n, mode));
  if (!isObject(node)) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) {
      out.$ref = `${ROOT_ID}#/$defs/${v.slice("#/components/schemas/".length)}`;
    } else if (k === "properties" && isObject(v)) {
      out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, transform(s, mode)]));
    } else if (k === "example" || k === "examples" || k === "nullable") {
      // annotations only (nullable handled below)
    } else {
      out[k] = transform(v, mode);
    }
  }
  if (mode === "request" && isObject(out.properties) && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  if (node.nullable === true) {
    if (typeof out.type === "string") {
      out.type = [out.type, "null"];
      if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
      return out;
    }
    return { anyOf: [out, { type: "null" }] };
  }
  return out;
}

function patchedSchemas(doc: Json): Json {
  const schemas = clone((doc.components as Json).schemas as Json);
  for (const dev of ALLOWLIST) {
    if (dev.kind !== "schema") continue;
    applySchemaPatch(schemas, dev);
  }
  // Document section "Errors" lists rate_limit_exceeded (429); the schema enum forgot it.
  const error = schemas.PublicApiErrorResponseDto as Json;
  const code = (error.properties as Json).code as Json;
  code.enum = [...(code.enum as string[]), "rate_limit_exceeded"];
  return schemas;
}

function applySchemaPatch(schemas: Json, patch: SchemaPatch): void {
  for (const name of patch.schemas) {
    const schema = schemas[name] as Json | undefined;
    if (!schema) throw new Error(`allow-list ${patch.id}: no schema ${name} in the document`);
    const props = schema.properties as Json;
    for (const p of patch.nullable ?? []) {
      if (!props[p]) throw new Error(`allow-list ${patch.id}: ${name} has no property ${p}`);
      (props[p] as Json).nullable = true;
    }
    for (const [p, replacement] of Object.entries(patch.replace ?? {})) {
      const old = props[p] as Json | undefined;
      props[p] = { ...clone(replacement), ...(old?.nullable ? { nullable: true } : {}) };
    }
  }
}

function makeAjv(schemas: Json, mode: "request" | "response"): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  const defs = Object.fromEntries(Object.entries(schemas).map(([n, s]) => [n, transform(s, mode)]));
  ajv.addSchema({ $id: ROOT_ID, $defs: defs });
  return ajv;
}

function load(): Loaded {
  if (loaded) return loaded;
  const file = openApiPath();
  if (!existsSync(file)) throw new Error(`Verda OpenAPI document not found at ${file} (set VERDA_OPENAPI)`);
  const doc = JSON.parse(readFileSync(file, "utf8")) as Json;
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries(doc.paths as Json)) {
    const segments = template.split("/");
    const regex = new RegExp(`^${segments.map((s) => (/^\{.+\}$/.test(s) ? "[^/]+" : s.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))).join("/")}$`);
    const literalSegments = segments.filter((s) => !/^\{.+\}$/.test(s)).length;
    for (const m of METHODS) {
      const op = (item as Json)[m];
      if (isObject(op)) operations.push({ method: m.toUpperCase(), template, regex, literalSegments, op });
    }
  }
  operations.sort((a, b) => b.literalSegments - a.literalSegments);
  const schemas = patchedSchemas(doc);
  loaded = { doc, operations, requestAjv: makeAjv(schemas, "request"), responseAjv: makeAjv(schemas, "response"), cache: new Map() };
  return loaded;
}

/** The document's operation for a concrete method and path (query string ignored). */
export function findOperation(method: string, path: string): { template: string; operation: Json } | undefined {
  const pathname = path.split("?")[0]!;
  const op = load().operations.find((o) => o.method === method.toUpperCase() && o.regex.test(pathname));
  return op && { template: op.template, operation: op.op };
}

function validator(key: string, schema: unknown, mode: "request" | "response"): ValidateFunction {
  const l = load();
  const cacheKey = `${mode} ${key}`;
  let fn = l.cache.get(cacheKey);
  if (!fn) {
    fn = (mode === "request" ? l.requestAjv : l.responseAjv).compile(transform(clone(schema), mode) as object);
    l.cache.set(cacheKey, fn);
  }
  return fn;
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || "(root)";
    const extra =
      e.keyword === "additionalProperties" ? ` '${String((e.params as { additionalProperty: string }).additionalProperty)}'` :
      e.keyword === "enum" ? ` ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}` : "";
    return `${where} ${e.message ?? e.keyword}${extra}`;
  });
}

function jsonSchemaOf(content: unknown): unknown {
  if (!isObject(content)) return undefined;
  const json = content["application/json"];
  return isObject(json) ? json.schema : undefined;
}

function coerceQueryValue(values: string[], schema: Json): unknown {
  const type = schema.type;
  const one = (v: string): unknown =>
    type === "number" || type === "integer" ? (v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v) :
    type === "boolean" ? (v === "true" ? true : v === "false" ? false : v) : v;
  if (type === "array") {
    const items = isObject(schema.items) ? schema.items : {};
    return values.map((v) => coerceQueryValue([v], items));
  }
  return one(values[values.length - 1]!);
}

/** Checks the query string and JSON body of a request. `body` is the parsed body (undefined = none). */
export function validateRequest(method: string, path: string, body?: unknown): string[] {
  const label = `${method.toUpperCase()} ${path.split("?")[0]} request`;
  const found = findOperation(method, path);
  if (!found) return [`${label}: no such operation in the document`];
  const { operation, template } = found;
  const problems: string[] = [];

  const query = new URLSearchParams(path.includes("?") ? path.slice(path.indexOf("?") + 1) : "");
  const params = (Array.isArray(operation.parameters) ? operation.parameters : []).filter(
    (p): p is Json => isObject(p) && p.in === "query",
  );
  for (const name of new Set(query.keys())) {
    if (!params.some((p) => p.name === name)) problems.push(`${label}: unknown query parameter '${name}'`);
  }
  for (const p of params) {
    const name = String(p.name);
    const values = query.getAll(name);
    if (values.length === 0) {
      if (p.required === true) problems.push(`${label}: missing required query parameter '${name}'`);
      continue;
    }
    const schema = isObject(p.schema) ? p.schema : {};
    const fn = validator(`${method} ${template} query ${name}`, schema, "response");
    if (!fn(coerceQueryValue(values, schema))) problems.push(...describe(fn.errors).map((e) => `${label}: query '${name}' ${e}`));
  }

  const requestBody = isObject(operation.requestBody) ? operation.requestBody : undefined;
  if (!requestBody) {
    if (body !== undefined) problems.push(`${label}: the operation takes no request body`);
    return problems;
  }
  if (body === undefined) {
    if (requestBody.required === true) problems.push(`${label}: request body is required`);
    return problems;
  }
  const schema = jsonSchemaOf(requestBody.content);
  if (schema !== undefined) {
    const fn = validator(`${method} ${template} body`, schema, "request");
    if (!fn(body)) problems.push(...describe(fn.errors).map((e) => `${label}: body ${e}`));
  }
  return problems;
}

function responsePatches(method: string, template: string): ResponsePatch[] {
  return ALLOWLIST.filter(
    (d): d is ResponsePatch =>
      d.kind === "response" && d.operations.some((o) => o.method === method.toUpperCase() && o.path === template),
  );
}

/** Checks a response status and body. `body` is the parsed JSON (a string for a bare-text body, undefined when empty). */
export function validateResponse(method: string, path: string, status: number, body?: unknown): string[] {
  const label = `${method.toUpperCase()} ${path.split("?")[0]} -> ${status}`;
  const found = findOperation(method, path);
  if (!found) {
    // "not_found: Resource not found, or invalid path" (document section "Errors").
    return GLOBAL_ERROR_STATUSES.has(status) ? checkErrorBody(label, body) : [`${label}: no such operation in the document`];
  }
  const { operation, template } = found;
  const patches = responsePatches(method, template);
  const responses = isObject(operation.responses) ? operation.responses : {};
  const declared = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;

  if (!isObject(declared)) {
    if (patches.some((p) => p.extraEmptyStatuses?.includes(status))) {
      return body === undefined || body === "" ? [] : [`${label}: expected an empty body`];
    }
    if (GLOBAL_ERROR_STATUSES.has(status)) return checkErrorBody(label, body);
    return [`${label}: status ${status} is not declared for ${method.toUpperCase()} ${template}`];
  }
  const schema = jsonSchemaOf(declared.content);
  if (schema === undefined) return status >= 400 ? checkErrorBody(label, body) : [];
  if (body === undefined) return [`${label}: expected a JSON body`];
  const fn = validator(`${method} ${template} ${status}`, schema, "response");
  const valid: boolean = fn(body);
  if (valid) return [];
  const errors = fn.errors;
  if (patches.some((p) => p.arrayOfDeclared) && Array.isArray(body) && body.length === 1 && fn(body[0])) return [];
  return describe(errors).map((e) => `${label}: ${e}`);
}

function checkErrorBody(label: string, body: unknown): string[] {
  const fn = validator("error", { $ref: "#/components/schemas/PublicApiErrorResponseDto" }, "response");
  if (body === undefined) return [`${label}: error responses carry a {code, message} body`];
  return fn(body) ? [] : describe(fn.errors).map((e) => `${label}: error body ${e}`);
}

export interface ExchangeLike {
  method: string;
  /** Path (optionally with query string), or a full URL. */
  url: string;
  status: number;
  requestBody?: string;
  requestContentType?: string | null;
  responseBody?: string;
  responseContentType?: string | null;
}

/** Parses a raw body; `raw` is true when it was not JSON (e.g. a bare id). */
function parseText(text: string | undefined, contentType: string | null | undefined): { value: unknown; raw: boolean } {
  if (text === undefined || text === "") return { value: undefined, raw: false };
  if (contentType?.includes("application/x-www-form-urlencoded")) return { value: Object.fromEntries(new URLSearchParams(text)), raw: false };
  try {
    return { value: JSON.parse(text), raw: false };
  } catch {
    return { value: text, raw: true };
  }
}

/** Validates one recorded request/response pair (bodies as raw text); `checkRequest: false` checks only the response. */
export function validateExchange(x: ExchangeLike, options: { checkRequest?: boolean } = {}): string[] {
  const path = /^https?:\/\//.test(x.url) ? new URL(x.url).pathname + new URL(x.url).search : x.url;
  const request = parseText(x.requestBody, x.requestContentType);
  const problems =
    options.checkRequest === false ? [] :
    request.raw ? [`${x.method} ${path} request: body is not JSON`] :
    validateRequest(x.method, path, request.value);
  const response = parseText(x.responseBody, x.responseContentType);
  problems.push(...validateResponse(x.method, path, x.status, response.value));
  const found = findOperation(x.method, path);
  const declared = found && isObject(found.operation.responses) ? (found.operation.responses as Json)[String(x.status)] : undefined;
  const hasSchema = isObject(declared) && jsonSchemaOf(declared.content) !== undefined;
  if (hasSchema && x.responseBody && !x.responseContentType?.includes("application/json")) {
    problems.push(`${x.method} ${path} -> ${x.status}: Content-Type ${x.responseContentType ?? "(none)"} is not application/json`);
  }
  if (response.raw && hasSchema) {
    problems.push(`${x.method} ${path} -> ${x.status}: body is not JSON`);
  }
  return problems;
}

/** Validates many exchanges; returns every violation, each prefixed by the exchange's index. */
export function validateExchanges(list: ExchangeLike[], options: { checkRequest?: boolean } = {}): string[] {
  return list.flatMap((x, i) => validateExchange(x, options).map((p) => `#${i} ${p}`));
}
