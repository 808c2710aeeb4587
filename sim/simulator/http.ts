// HTTP plumbing: Verda-style errors ({code, message}), responses and request bodies.
import type { IncomingMessage } from "node:http";
import type { Schemas } from "./types";

export type ErrorCode =
  | "invalid_request"
  | "unauthorized_request"
  | "insufficient_funds"
  | "forbidden_action"
  | "not_found"
  | "conflict"
  | "rate_limit_exceeded"
  | "server_error"
  | "service_unavailable";

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthorized_request",
  402: "insufficient_funds",
  403: "forbidden_action",
  404: "not_found",
  409: "conflict",
  429: "rate_limit_exceeded",
  500: "server_error",
  503: "service_unavailable",
};

export function codeForStatus(status: number): ErrorCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request");
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const fail = {
  badRequest: (message: string) => new ApiError(400, "invalid_request", message),
  unauthorized: (message: string) => new ApiError(401, "unauthorized_request", message),
  funds: (message = "Not enough funds to perform the action") => new ApiError(402, "insufficient_funds", message),
  forbidden: (message: string) => new ApiError(403, "forbidden_action", message),
  notFound: (message: string) => new ApiError(404, "not_found", message),
  unavailable: (message: string) => new ApiError(503, "service_unavailable", message),
};

export interface ApiResponse {
  status: number;
  /** JSON body; omitted for an empty body. */
  json?: unknown;
  /** Raw text body (e.g. a bare UUID); wins over `json`. */
  text?: string;
  headers?: Record<string, string>;
}

export const ok = (json: unknown, status = 200): ApiResponse => ({ status, json });
export const empty = (status: number): ApiResponse => ({ status });

export function errorResponse(err: ApiError): ApiResponse {
  // The document's enum lacks rate_limit_exceeded, which its "Errors" section lists.
  const body: Omit<Schemas["PublicApiErrorResponseDto"], "code"> & { code: ErrorCode } = { code: err.code, message: err.message };
  return { status: err.status, json: body, headers: err.headers };
}

const MAX_BODY_BYTES = 1_000_000;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw fail.badRequest("Request body too large");
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses a JSON or form-encoded body; an empty body is `undefined`. */
export function parseBody(text: string, contentType: string | undefined): unknown {
  if (text.trim() === "") return undefined;
  if (contentType?.includes("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text);
  } catch {
    throw fail.badRequest("Request body is not valid JSON");
  }
}

/** Narrows a parsed body to a plain object or fails with 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw fail.badRequest("Request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}
