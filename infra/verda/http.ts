// HTTP layer of the Verda client: bearer auth with renewal, bounded retries (429 Retry-After, 5xx and
// network failures with capped jittered backoff), per-request timeouts, typed errors, instrumentation.
// Plain fetch and no module-level state, so Pulumi can inline it into serialized dynamic providers.
import { TokenManager, type TokenBody, type TokenCache, type TokenEncoding } from "./auth";
import { apiErrorFrom, isVerdaApiError, verdaNetworkError } from "./errors";
import { backoffDelayMs, DEFAULT_RETRY_POLICY, parseRetryAfterMs, sleep, type RetryPolicy } from "./retry";
import type { TokenAnswer } from "./types";

export const DEFAULT_BASE_URL = "https://api.verda.com/v1";

/** Counters for one client (or shared by several): API calls per "METHOD /route" and time in backoff. */
export interface VerdaClientMetrics {
  calls: Record<string, number>;
  backoffMs: number;
  retries: number;
  reauthentications: number;
}

export function newMetrics(): VerdaClientMetrics {
  return { calls: {}, backoffMs: 0, retries: 0, reauthentications: 0 };
}

/** One HTTP exchange as seen on the wire; secrets in token bodies are replaced by "[redacted]". */
export interface VerdaExchange {
  method: string;
  /** URL path as sent, including the `/v1` prefix, e.g. `/v1/instances/1234`. */
  path: string;
  /** The OpenAPI path template, e.g. `/v1/instances/{instance_id}`. */
  route: string;
  query: Record<string, string>;
  requestContentType: string | undefined;
  requestBody: unknown;
  status: number;
  responseContentType: string | undefined;
  responseBody: unknown;
  responseText: string;
}

export interface VerdaClientOptions {
  clientId: string;
  clientSecret: string;
  baseUrl?: string;
  requestTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  metrics?: VerdaClientMetrics;
  onExchange?: (exchange: VerdaExchange) => void;
  /** Shares the access token between clients of one process (in memory only, never serialized). */
  tokenCache?: TokenCache;
  /** Injectable for unit tests. */
  fetch?: typeof fetch;
  random?: () => number;
}

export interface SendArgs {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Template relative to the base URL, e.g. `/instances/{instance_id}`. */
  route: string;
  params?: Record<string, string>;
  query?: Record<string, string | undefined>;
  body?: unknown;
  encoding?: TokenEncoding;
  auth: boolean;
  /** Statuses that must not be retried for this call (e.g. 503 "No capacity" on a deploy). */
  noRetry?: number[];
  /** Safe to repeat after a network failure that may have reached the server. */
  repeatable?: boolean;
}

export interface Answer {
  status: number;
  body: unknown;
  text: string;
}

const SECRET_FIELDS = [
  "client_secret", "refresh_token", "access_token",
  // serverless secrets, file secrets and registry credentials (write-only at Verda)
  "value", "base64_content", "secret_access_key", "service_account_key", "docker_config_json",
];

/** Routes whose bodies carry secrets: the exchange observer sees "[redacted]" in place of each secret field. */
const SECRET_ROUTES = ["/oauth2/token", "/secrets", "/file-secrets", "/container-registry-credentials"];

function redact(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(redact);
  if (!body || typeof body !== "object") return body;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    copy[key] = SECRET_FIELDS.includes(key) && typeof value === "string" ? "[redacted]" : redact(value);
  }
  return copy;
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Network failures where the request certainly never reached the server, so even a POST may repeat. */
function failedBeforeSending(error: unknown): boolean {
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  return code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN";
}

function describeNetworkFailure(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "request timed out";
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}

/**
 * Sends requests; the typed endpoint methods live in VerdaClient (client.ts), which holds one of these.
 * Composition, not inheritance: Pulumi's closure serializer breaks `super()` calls between classes.
 */
export class VerdaHttp {
  readonly baseUrl: string;
  readonly metrics: VerdaClientMetrics;
  private readonly tokens: TokenManager;
  readonly policy: RetryPolicy;
  private readonly requestTimeoutMs: number;
  readonly options: VerdaClientOptions;

  constructor(options: VerdaClientOptions) {
    if (!options.clientId || !options.clientSecret) {
      throw new Error("Verda credentials missing: set VERDA_CLIENT_ID and VERDA_CLIENT_SECRET (or verda:clientId/verda:clientSecret config)");
    }
    this.options = options;
    this.baseUrl = (options.baseUrl || DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.metrics = options.metrics ?? newMetrics();
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.tokens = new TokenManager(options.clientId, options.clientSecret, (body, encoding) => this.requestToken(body, encoding), options.tokenCache);
  }

  async list<T>(args: SendArgs): Promise<T[]> {
    const answer = await this.send(args);
    return Array.isArray(answer.body) ? (answer.body as T[]) : [];
  }

  async getOrUndefined<T>(args: SendArgs): Promise<T | undefined> {
    try {
      return (await this.send(args)).body as T;
    } catch (e) {
      if (isVerdaApiError(e, 404)) return undefined;
      throw e;
    }
  }

  async ignoreNotFound(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (e) {
      if (!isVerdaApiError(e, 404)) throw e;
    }
  }

  private async requestToken(body: TokenBody, encoding: TokenEncoding): Promise<TokenAnswer> {
    const answer = await this.send({ method: "POST", route: "/oauth2/token", body, encoding, auth: false, repeatable: true });
    return answer.body as TokenAnswer;
  }

  /** One logical request: auth, retries and error mapping. Every HTTP attempt is counted. */
  async send(args: SendArgs): Promise<Answer> {
    const path = this.pathFor(args);
    const routeKey = `${args.method} ${this.prefix()}${args.route}`;
    let attempt = 0;
    let reauthenticated = false;
    for (;;) {
      attempt += 1;
      const token = args.auth ? await this.tokens.accessToken() : undefined;
      let response: Response;
      let text: string;
      this.metrics.calls[routeKey] = (this.metrics.calls[routeKey] ?? 0) + 1;
      try {
        response = await this.fetchOnce(args, path, token);
        text = await response.text();
      } catch (e) {
        const mayRepeat = args.method !== "POST" || args.repeatable || failedBeforeSending(e);
        if (mayRepeat && attempt < this.policy.maxAttempts) {
          await this.backoff(backoffDelayMs(attempt, this.policy, this.options.random));
          continue;
        }
        throw verdaNetworkError(args.method, path, describeNetworkFailure(e));
      }
      const body = parseJson(text);
      this.report(args, path, response, body, text);
      if (response.ok) return { status: response.status, body, text };

      if (response.status === 401 && args.auth && !reauthenticated) {
        // Token expired or revoked mid-run: log in again once and repeat the call.
        reauthenticated = true;
        this.metrics.reauthentications += 1;
        this.tokens.invalidate();
        attempt -= 1;
        continue;
      }
      const delay = this.retryDelay(args, response, attempt);
      if (delay !== undefined) {
        await this.backoff(delay);
        continue;
      }
      throw apiErrorFrom(response.status, body, text, args.method, path);
    }
  }

  /** How long to wait before retrying this answer, or undefined when it must be raised. */
  private retryDelay(args: SendArgs, response: Response, attempt: number): number | undefined {
    const status = response.status;
    if (attempt >= this.policy.maxAttempts || args.noRetry?.includes(status)) return undefined;
    if (status === 429) {
      const retryAfter = parseRetryAfterMs(response.headers.get("retry-after"));
      if (retryAfter === undefined) return backoffDelayMs(attempt, this.policy, this.options.random);
      return retryAfter <= this.policy.maxRetryAfterMs ? retryAfter : undefined;
    }
    if (status >= 500) return backoffDelayMs(attempt, this.policy, this.options.random);
    return undefined;
  }

  async backoff(ms: number): Promise<void> {
    this.metrics.retries += 1;
    const started = Date.now();
    await sleep(ms);
    this.metrics.backoffMs += Date.now() - started;
  }

  private async fetchOnce(args: SendArgs, path: string, token: string | undefined): Promise<Response> {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": this.options.userAgent ?? "comfyume-infra-verda-client/0.1",
    };
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (args.body !== undefined) {
      if (args.encoding === "form") {
        headers["content-type"] = "application/x-www-form-urlencoded";
        payload = new URLSearchParams(args.body as Record<string, string>).toString();
      } else {
        headers["content-type"] = "application/json";
        payload = JSON.stringify(args.body);
      }
    }
    const doFetch = this.options.fetch ?? fetch;
    return doFetch(this.urlFor(path, args.query), {
      method: args.method,
      headers,
      body: payload,
      signal: AbortSignal.timeout(this.requestTimeoutMs),
    });
  }

  private report(args: SendArgs, path: string, response: Response, body: unknown, text: string): void {
    if (!this.options.onExchange) return;
    const secretBearing = SECRET_ROUTES.includes(args.route);
    this.options.onExchange({
      method: args.method,
      path,
      route: `${this.prefix()}${args.route}`,
      query: Object.fromEntries(Object.entries(args.query ?? {}).filter((kv): kv is [string, string] => kv[1] !== undefined)),
      requestContentType: args.body === undefined ? undefined : args.encoding === "form" ? "application/x-www-form-urlencoded" : "application/json",
      requestBody: secretBearing ? redact(args.body) : args.body,
      status: response.status,
      responseContentType: response.headers.get("content-type") ?? undefined,
      responseBody: secretBearing ? redact(body) : body,
      responseText: secretBearing ? "[redacted]" : text,
    });
  }

  /** The path prefix of the base URL (normally `/v1`), so routes match the OpenAPI document. */
  private prefix(): string {
    return new URL(this.baseUrl).pathname.replace(/\/+$/, "");
  }

  private pathFor(args: SendArgs): string {
    const filled = args.route.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = args.params?.[name];
      if (value === undefined || value === "") throw new Error(`Verda client: missing path parameter ${name} for ${args.route}`);
      return encodeURIComponent(value);
    });
    return `${this.prefix()}${filled}`;
  }

  private urlFor(path: string, query: SendArgs["query"]): string {
    const url = new URL(this.baseUrl);
    url.pathname = path;
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    return url.toString();
  }
}
