// Typed errors raised by the Verda client. Messages carry Verda's code and message, the HTTP status,
// method and path (never a query string, header, token or request body, so no secret can leak).
//
// They are plain `Error` objects with extra fields, made by factory functions rather than
// `class ... extends Error`: Pulumi's closure serializer rewrites subclasses of built-ins into
// functions whose instances are not proper Errors (no message, no stack) inside the provider host.

/** An HTTP error answer from the Verda API that the client did not (or could no longer) retry. */
export interface VerdaApiError extends Error {
  name: "VerdaApiError";
  status: number;
  /** Verda's error code, e.g. `invalid_request`; `unknown` when the body was not `{code, message}`. */
  code: string;
  apiMessage: string;
  method: string;
  path: string;
}

/** The request never produced an HTTP answer (connection failure or per-request timeout). */
export interface VerdaNetworkError extends Error {
  name: "VerdaNetworkError";
  method: string;
  path: string;
}

export function verdaApiError(args: { status: number; code: string; apiMessage: string; method: string; path: string }): VerdaApiError {
  const error = new Error(`Verda API ${args.method} ${args.path} failed: ${args.status} ${args.code}: ${args.apiMessage}`);
  return Object.assign(error, { name: "VerdaApiError" as const, ...args });
}

export function verdaNetworkError(method: string, path: string, reason: string): VerdaNetworkError {
  const error = new Error(`Verda API ${method} ${path} did not answer: ${reason}`);
  return Object.assign(error, { name: "VerdaNetworkError" as const, method, path });
}

/** A status poll ran past its deadline. */
export function waitTimeoutError(what: string, timeoutMs: number, lastStatus: string | undefined): Error {
  const error = new Error(`Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} (last status: ${lastStatus ?? "none"})`);
  error.name = "VerdaWaitTimeoutError";
  return error;
}

function named(e: unknown, name: string): boolean {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === name;
}

export function isVerdaApiError(e: unknown, status?: number): e is VerdaApiError {
  return named(e, "VerdaApiError") && (status === undefined || (e as VerdaApiError).status === status);
}

export function isVerdaNetworkError(e: unknown): e is VerdaNetworkError {
  return named(e, "VerdaNetworkError");
}

/** Builds the typed error from an HTTP answer; tolerates non-JSON and non-standard bodies. */
export function apiErrorFrom(status: number, body: unknown, rawText: string, method: string, path: string): VerdaApiError {
  const obj = body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const code = typeof obj?.code === "string" ? obj.code : "unknown";
  const fromBody = typeof obj?.message === "string" ? obj.message : rawText.trim().slice(0, 300);
  return verdaApiError({ status, code, apiMessage: fromBody || "(empty body)", method, path });
}
