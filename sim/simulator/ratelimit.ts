// Fixed-window rate limits as documented: per project across authenticated requests, and per
// (method, full path) endpoint, with route overrides. 429 carries Retry-After in seconds.
import { ApiError } from "./http";
import type { RateLimitConfig } from "./types";

export const DOCUMENTED_RATE_LIMITS: RateLimitConfig = {
  projectPerWindow: 500,
  endpointPerWindow: 60,
  windowMs: 60_000,
  overrides: { "GET /v1/instances": 120, "GET /v1/volumes": 120 },
};

interface Window {
  start: number;
  used: number;
}

export class RateLimiter {
  private project: Window = { start: 0, used: 0 };
  private endpoints = new Map<string, Window>();
  throttled = 0;

  constructor(readonly config: RateLimitConfig) {}

  private current(w: Window, now: number): Window {
    if (now - w.start >= this.config.windowMs) {
      w.start = now;
      w.used = 0;
    }
    return w;
  }

  /** Counts one request; returns the RateLimit headers or throws a 429 ApiError. */
  take(method: string, path: string): Record<string, string> {
    const now = Date.now();
    const key = `${method} ${path}`;
    const endpointLimit = this.config.overrides[key] ?? this.config.endpointPerWindow;
    const project = this.current(this.project, now);
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = { start: now, used: 0 };
      this.endpoints.set(key, ep);
    }
    ep = this.current(ep, now);
    const secondsLeft = (w: Window) => Math.max(1, Math.ceil((w.start + this.config.windowMs - now) / 1000));
    const headers = (projectLeft: number, endpointLeft: number) => ({
      "RateLimit-Policy": `"project";q=${this.config.projectPerWindow};w=${Math.round(this.config.windowMs / 1000)}, "endpoint";q=${endpointLimit};w=${Math.round(this.config.windowMs / 1000)}`,
      RateLimit: `"project";r=${projectLeft};t=${secondsLeft(project)}, "endpoint";r=${endpointLeft};t=${secondsLeft(ep!)}`,
    });
    const projectFull = project.used >= this.config.projectPerWindow;
    const endpointFull = ep.used >= endpointLimit;
    if (projectFull || endpointFull) {
      this.throttled++;
      const retry = Math.max(projectFull ? secondsLeft(project) : 0, endpointFull ? secondsLeft(ep) : 0);
      const h = headers(Math.max(0, this.config.projectPerWindow - project.used), Math.max(0, endpointLimit - ep.used));
      throw new ApiError(429, "rate_limit_exceeded", "Too many requests", { ...h, "Retry-After": String(retry) });
    }
    project.used++;
    ep.used++;
    return headers(this.config.projectPerWindow - project.used, endpointLimit - ep.used);
  }

  reset(): void {
    this.project = { start: 0, used: 0 };
    this.endpoints.clear();
    this.throttled = 0;
  }
}
