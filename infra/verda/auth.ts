// OAuth2 client-credentials token handling: renew before expiry (refresh_token grant), full
// re-authentication when the refresh fails, JSON body with a form-encoded fallback.
import { isVerdaApiError } from "./errors";
import type { ClientCredentialsBody, RefreshTokenBody, TokenAnswer } from "./types";

export type TokenBody = ClientCredentialsBody | RefreshTokenBody;
export type TokenEncoding = "json" | "form";
/** Sends one token request (with the client's retry rules) and returns the parsed answer. */
export type TokenTransport = (body: TokenBody, encoding: TokenEncoding) => Promise<TokenAnswer>;

export interface HeldToken {
  accessToken: string;
  refreshToken?: string;
  expiresAtMs: number;
  renewAtMs: number;
}

/** Renew this long before expiry: 60 s, or a tenth of a short lifetime (tests use tokens of seconds). */
export function renewLeadMs(expiresInSeconds: number): number {
  return Math.min(60_000, (expiresInSeconds * 1000) / 10);
}

/** Some deployments reject JSON token bodies (the Go SDK's "staging quirk"); then use form encoding. */
export function looksLikeJsonRejected(error: unknown): boolean {
  if (!isVerdaApiError(error)) return false;
  if (error.status === 415) return true;
  return error.status === 400 && /grant_type|unsupported grant type|not valid json|content.type/i.test(error.apiMessage);
}

/** Holds the current token; several short-lived clients of one process may share it. */
export interface TokenCache {
  held?: HeldToken;
}

export class TokenManager {
  private encoding: TokenEncoding = "json";
  private pending: Promise<string> | undefined;

  constructor(
    private readonly clientId: string,
    private readonly clientSecret: string,
    private readonly transport: TokenTransport,
    private readonly cache: TokenCache = {},
    private readonly now: () => number = Date.now,
  ) {}

  private get held(): HeldToken | undefined {
    return this.cache.held;
  }

  private set held(token: HeldToken | undefined) {
    this.cache.held = token;
  }

  /** A valid access token, renewed first when it is close to expiry. Concurrent callers share one renewal. */
  async accessToken(): Promise<string> {
    if (this.held && this.now() < this.held.renewAtMs) return this.held.accessToken;
    if (!this.pending) {
      this.pending = this.renew().finally(() => {
        this.pending = undefined;
      });
    }
    return this.pending;
  }

  /** Drops the token (after a 401) so the next call authenticates from scratch. */
  invalidate(): void {
    this.held = undefined;
  }

  private async renew(): Promise<string> {
    const refreshToken = this.held?.refreshToken;
    if (refreshToken) {
      try {
        // Only grant_type + refresh_token: extra client fields would match both oneOf branches of the spec.
        return this.store(await this.request({ grant_type: "refresh_token", refresh_token: refreshToken }));
      } catch {
        // A rejected or failed refresh falls back to a full client-credentials login below.
      }
    }
    this.held = undefined;
    return this.store(
      await this.request({ grant_type: "client_credentials", client_id: this.clientId, client_secret: this.clientSecret }),
    );
  }

  private async request(body: TokenBody): Promise<TokenAnswer> {
    if (this.encoding === "json") {
      try {
        return await this.transport(body, "json");
      } catch (e) {
        if (!looksLikeJsonRejected(e)) throw e;
        this.encoding = "form";
      }
    }
    return this.transport(body, "form");
  }

  private store(answer: TokenAnswer): string {
    if (typeof answer?.access_token !== "string" || answer.access_token === "") {
      throw new Error("Verda token endpoint answered without an access_token");
    }
    const expiresIn = typeof answer.expires_in === "number" && answer.expires_in > 0 ? answer.expires_in : 3600;
    const now = this.now();
    this.held = {
      accessToken: answer.access_token,
      refreshToken: typeof answer.refresh_token === "string" && answer.refresh_token ? answer.refresh_token : undefined,
      expiresAtMs: now + expiresIn * 1000,
      renewAtMs: now + expiresIn * 1000 - renewLeadMs(expiresIn),
    };
    return answer.access_token;
  }
}
