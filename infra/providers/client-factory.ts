// Builds a fresh Verda client inside each provider method (never captured, never serialized).
import { VerdaClient } from "../verda/client";
import { providerSettings, verdaRuntime, type ProviderSettings } from "./runtime";

export function makeClient(settings: ProviderSettings = providerSettings()): VerdaClient {
  const runtime = verdaRuntime();
  const tokens = (runtime.tokens ??= {});
  const tokenKey = `${settings.baseUrl ?? "default"}|${settings.clientId}`;
  return new VerdaClient({
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    baseUrl: settings.baseUrl,
    requestTimeoutMs: settings.requestTimeoutMs,
    retry: { baseDelayMs: settings.retryBaseMs, maxDelayMs: settings.retryMaxMs, maxAttempts: settings.retryMaxAttempts },
    metrics: runtime.metrics,
    onExchange: runtime.onExchange,
    tokenCache: (tokens[tokenKey] ??= {}),
  });
}

/** Credentials are optional for read-only catalogue checks: without them those checks are skipped. */
export function hasCredentials(settings: ProviderSettings = providerSettings()): boolean {
  return settings.clientId !== "" && settings.clientSecret !== "";
}
