// The HTTP server: per request, latency and error faults, auth, rate limits, routing, and the
// /_sim control endpoints (never faulted, authenticated or rate limited).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { handleControl } from "./control";
import { ApiError, errorResponse, fail, parseBody, readBody, type ApiResponse } from "./http";
import { enforceZeroBalance } from "./instances";
import { matchRoute, type RouteResult } from "./routes";
import type { Sim } from "./state";
import { sweepTrash } from "./volumes";

const CREATE_CALLS = new Set(["POST /v1/instances", "POST /v1/volumes", "POST /v1/ssh-keys", "POST /v1/sshkeys", "POST /v1/scripts", "POST /v1/container-deployments"]);

function formatCreated(sim: Sim, result: RouteResult): ApiResponse {
  if (!("createdId" in result)) return result;
  const id = result.createdId;
  switch (sim.opts.createIdFormat) {
    case "json-string":
      return { status: result.status, json: id };
    case "object":
      return { status: result.status, json: { id } };
    default:
      return { status: result.status, text: id };
  }
}

async function handleApi(sim: Sim, req: IncomingMessage, url: URL, rawBody: string): Promise<ApiResponse> {
  const method = (req.method ?? "GET").toUpperCase();
  const path = url.pathname;
  const contentType = req.headers["content-type"] ?? "";
  const info = { method, path, contentType };
  sim.requestCount++;
  sweepTrash(sim);
  enforceZeroBalance(sim);

  const delay = sim.faults.takeLatency(info);
  if (delay > 0) await sleep(delay);
  const injected = sim.faults.takeHttpFault(info);
  if (injected && !injected.afterApply) throw injected.error;

  if (method === "POST" && path === "/v1/oauth2/token") {
    return sim.tokens.handleTokenRequest(parseBody(rawBody, contentType));
  }
  const { route, params, pathKnown } = matchRoute(method, path);
  let rateHeaders: Record<string, string> = {};
  if (!route?.public) {
    sim.tokens.authenticate(req.headers.authorization);
    if (sim.limiter) rateHeaders = sim.limiter.take(method, path);
  }
  if (!route) {
    // Live: tokens only work on documented endpoints ("Insufficient scope", RN 2026-03-20).
    throw pathKnown || path.startsWith("/v1/") ? fail.notFound(`Cannot ${method} ${path}`) : fail.forbidden("Insufficient scope");
  }
  if (CREATE_CALLS.has(`${method} ${path}`) && sim.faults.takeInsufficientFunds(info)) throw fail.funds();
  const body = parseBody(rawBody, contentType);
  const result = formatCreated(sim, route.handle(sim, { params, query: url.searchParams, body }));
  if (injected) throw injected.error; // after_apply: the change is made, the answer is lost
  return { ...result, headers: { ...rateHeaders, ...result.headers } };
}

function send(res: ServerResponse, r: ApiResponse): { contentType: string | null; text: string } {
  let text = "";
  let contentType: string | null = null;
  if (r.text !== undefined) {
    text = r.text;
    contentType = "text/plain; charset=utf-8";
  } else if (r.json !== undefined) {
    text = JSON.stringify(r.json);
    contentType = "application/json; charset=utf-8";
  }
  const headers: Record<string, string | number> = { ...r.headers, "Content-Length": Buffer.byteLength(text) };
  if (contentType) headers["Content-Type"] = contentType;
  res.writeHead(r.status, headers);
  res.end(text);
  return { contentType, text };
}

export function createSimServer(sim: Sim): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://sim.local");
      let rawBody = "";
      let response: ApiResponse;
      const control = url.pathname.startsWith("/_sim/");
      try {
        rawBody = await readBody(req);
        response = control ? handleControl(sim, req.method ?? "GET", url, rawBody) : await handleApi(sim, req, url, rawBody);
      } catch (err) {
        if (err instanceof ApiError) {
          response = errorResponse(err);
        } else {
          sim.opts.log(`simulator error on ${req.method} ${url.pathname}: ${err instanceof Error ? err.stack : String(err)}`);
          response = errorResponse(new ApiError(500, "server_error", "Internal simulator error"));
        }
      }
      const sent = send(res, response);
      if (!control) {
        sim.record({
          method: (req.method ?? "GET").toUpperCase(),
          url: url.pathname + url.search,
          requestContentType: req.headers["content-type"] ?? null,
          requestBody: rawBody,
          status: response.status,
          responseContentType: sent.contentType,
          responseBody: sent.text,
        });
      }
    })();
  });
}
