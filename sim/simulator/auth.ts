// OAuth2 client-credentials tokens. Tokens look like JWTs (three base64url parts) but are opaque
// random strings the simulator remembers with their expiry.
import { randomBytes } from "node:crypto";
import { bodyObject, fail, ok, type ApiResponse } from "./http";
import type { Schemas } from "./types";

interface TokenEntry {
  expiresAt: number;
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

function jwtLike(kind: string): string {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ kind, jti: randomBytes(12).toString("hex"), scope: "cloud-api-v1" }));
  return `${header}.${payload}.${randomBytes(32).toString("base64url")}`;
}

export class TokenStore {
  private access = new Map<string, TokenEntry>();
  private refresh = new Map<string, TokenEntry>();
  issued = 0;
  refreshed = 0;

  constructor(
    private readonly clientId: string,
    private readonly clientSecret: string,
    private readonly accessTtlMs: number,
    private readonly refreshTtlMs: number,
  ) {}

  /** POST /v1/oauth2/token with a parsed JSON or form body. */
  handleTokenRequest(body: unknown): ApiResponse {
    const b = bodyObject(body);
    if (b.grant_type === "client_credentials") {
      if (typeof b.client_id !== "string" || typeof b.client_secret !== "string") {
        throw fail.badRequest("client_id and client_secret are required");
      }
      if (b.client_id !== this.clientId || b.client_secret !== this.clientSecret) {
        throw fail.unauthorized("Invalid client id or client secret");
      }
      this.issued++;
      return this.issue();
    }
    if (b.grant_type === "refresh_token") {
      if (typeof b.refresh_token !== "string") throw fail.badRequest("refresh_token is required");
      const entry = this.refresh.get(b.refresh_token);
      if (!entry || entry.expiresAt <= Date.now()) throw fail.unauthorized("Invalid refresh token");
      this.refreshed++;
      return this.issue();
    }
    throw fail.badRequest("unsupported grant type");
  }

  private issue(): ApiResponse {
    const now = Date.now();
    const accessToken = jwtLike("access");
    const refreshToken = jwtLike("refresh");
    this.access.set(accessToken, { expiresAt: now + this.accessTtlMs });
    this.refresh.set(refreshToken, { expiresAt: now + this.refreshTtlMs });
    const body: Schemas["GetAccessTokenResponseDto"] = {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: Math.max(1, Math.round(this.accessTtlMs / 1000)),
      refresh_token: refreshToken,
      scope: "cloud-api-v1",
    };
    return ok(body);
  }

  /** Throws 401 unless the Authorization header carries a live access token. */
  authenticate(authorization: string | undefined): void {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!match) throw fail.unauthorized("Access token is missing");
    const entry = this.access.get(match[1]!);
    if (!entry) throw fail.unauthorized("Invalid access token");
    if (entry.expiresAt <= Date.now()) throw fail.unauthorized("Access token expired");
  }

  /** Expires every access token (and optionally every refresh token) now. */
  expireAll(includeRefresh = false): void {
    for (const e of this.access.values()) e.expiresAt = 0;
    if (includeRefresh) for (const e of this.refresh.values()) e.expiresAt = 0;
  }

  clear(): void {
    this.access.clear();
    this.refresh.clear();
    this.issued = 0;
    this.refreshed = 0;
  }
}
