// The simulated /v1 routes. Each handler gets the parsed request and returns an ApiResponse;
// create calls return `{id}` and the server formats it (bare UUID by default, as live).
import {
  IMAGES,
  INSTANCE_TYPES,
  instanceTypeView,
  LOCATIONS,
  LONG_TERM_PERIODS,
  findInstanceType,
  VOLUME_TYPES,
  volumeTypeView,
} from "./catalogue";
import { fail, ok, empty, type ApiResponse } from "./http";
import { instanceAction } from "./instance-actions";
import { availableTypes, deployInstance, getInstance, instanceView, isAvailable, listInstances } from "./instances";
import { addKey, addScript, deleteKeys, deleteScripts, getKey, getScript, idsField, listKeys, listScripts } from "./keys";
import { SERVERLESS_ROUTES } from "./serverless-routes";
import { toTags, type Sim } from "./state";
import type { Schemas } from "./types";
import { deleteVolumeById, volumeAction } from "./volume-actions";
import { createVolume, getVolume, listTrash, listVolumes, volumeView } from "./volumes";

export interface RouteRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

export type RouteResult = ApiResponse | { createdId: string; status: number };

export interface Route {
  method: string;
  /** OpenAPI-style template, e.g. /v1/instances/{instance_id} */
  path: string;
  public?: boolean;
  handle(sim: Sim, req: RouteRequest): RouteResult;
}

function currency(query: URLSearchParams): "usd" | "eur" {
  const c = query.get("currency") ?? "usd";
  if (c !== "usd" && c !== "eur") throw fail.badRequest(`Invalid currency: ${c}`);
  return c;
}

function isSpotQuery(query: URLSearchParams): void {
  const v = query.get("is_spot") ?? query.get("isSpot");
  if (v !== null && v !== "true" && v !== "false") throw fail.badRequest("is_spot must be 'true' or 'false'");
}

function locationQuery(query: URLSearchParams): string | null {
  const loc = query.get("location_code") ?? query.get("locationCode");
  if (loc !== null && !LOCATIONS.some((l) => l.code === loc)) throw fail.badRequest(`Invalid location_code: ${loc}`);
  return loc;
}

function tagRoutes(kind: "instances" | "volumes", idParam: string, find: (sim: Sim, id: string) => { tags: ReturnType<typeof toTags> }): Route[] {
  return [
    {
      method: "POST",
      path: `/v1/${kind}/{${idParam}}/tags`,
      handle: (sim, r) => {
        const target = find(sim, r.params[idParam]!);
        const [tag] = toTags([r.body]);
        if (target.tags.some((t) => t.id === tag!.id)) {
          return { status: 409, json: { code: "conflict", message: "Tag already linked" } };
        }
        if (target.tags.length >= 10) throw fail.badRequest("At most 10 tags are allowed");
        target.tags.push(tag!);
        return ok(tag, 201);
      },
    },
    {
      method: "DELETE",
      path: `/v1/${kind}/{${idParam}}/tags/{tagId}`,
      handle: (sim, r) => {
        const target = find(sim, r.params[idParam]!);
        const before = target.tags.length;
        target.tags = target.tags.filter((t) => t.id !== r.params.tagId && t.key !== r.params.tagId);
        if (target.tags.length === before) throw fail.notFound("Tag not found");
        return empty(204);
      },
    },
  ];
}

function keyRoutes(base: "/v1/ssh-keys" | "/v1/sshkeys"): Route[] {
  return [
    { method: "GET", path: base, handle: (sim) => listKeys(sim) },
    { method: "POST", path: base, handle: (sim, r) => ({ createdId: addKey(sim, r.body).id, status: 201 }) },
    { method: "DELETE", path: base, handle: (sim, r) => deleteKeys(sim, idsField(r.body, "keys")) },
    { method: "GET", path: `${base}/{sshKeyId}`, handle: (sim, r) => getKey(sim, r.params.sshKeyId!) },
    { method: "DELETE", path: `${base}/{sshKeyId}`, handle: (sim, r) => deleteKeys(sim, [r.params.sshKeyId!]) },
  ];
}

export const ROUTES: Route[] = [
  {
    method: "GET",
    path: "/v1/balance",
    handle: (sim) => ok({ amount: round2(sim.billing.balance()), currency: sim.billing.currency } satisfies Schemas["BalanceResponseDto"]),
  },
  { method: "GET", path: "/v1/locations", handle: () => ok(LOCATIONS) },
  {
    method: "GET",
    path: "/v1/instance-types",
    public: true,
    handle: (_sim, r) => ok(INSTANCE_TYPES.map((t) => instanceTypeView(t, currency(r.query)))),
  },
  {
    method: "GET",
    path: "/v1/instance-availability",
    handle: (sim, r) => {
      isSpotQuery(r.query);
      const loc = locationQuery(r.query);
      const locations = loc ? [loc] : LOCATIONS.map((l) => l.code);
      return ok(
        locations.map((code): Schemas["InstanceAvailabilityResponseDto"] => ({ location_code: code, availabilities: availableTypes(sim, code) })),
      );
    },
  },
  {
    method: "GET",
    path: "/v1/instance-availability/{instance_type}",
    handle: (sim, r) => {
      isSpotQuery(r.query);
      const type = r.params.instance_type!;
      if (!findInstanceType(type)) throw fail.notFound(`Instance type not found: ${type}`);
      const loc = locationQuery(r.query);
      const locations = loc ? [loc] : LOCATIONS.map((l) => l.code);
      return ok(locations.some((code) => isAvailable(sim, type, code)));
    },
  },
  {
    method: "GET",
    path: "/v1/images",
    handle: (_sim, r) => {
      const typeName = r.query.get("instance_type");
      if (!typeName) return ok(IMAGES);
      const type = findInstanceType(typeName);
      if (!type) throw fail.notFound(`Instance type not found: ${typeName}`);
      return ok(IMAGES.filter((i) => type.supported_os.includes(i.image_type)));
    },
  },
  {
    method: "GET",
    path: "/v1/volume-types",
    public: true,
    handle: (_sim, r) => ok(VOLUME_TYPES.map((v) => volumeTypeView(v, currency(r.query)))),
  },
  { method: "GET", path: "/v1/long-term/periods", public: true, handle: () => ok(LONG_TERM_PERIODS) },
  { method: "GET", path: "/v1/long-term/periods/instances", public: true, handle: () => ok(LONG_TERM_PERIODS) },

  { method: "GET", path: "/v1/instances", handle: (sim, r) => listInstances(sim, r.query) },
  { method: "POST", path: "/v1/instances", handle: (sim, r) => ({ createdId: deployInstance(sim, r.body).id, status: 202 }) },
  { method: "PUT", path: "/v1/instances", handle: (sim, r) => instanceAction(sim, r.body) },
  {
    method: "GET",
    path: "/v1/instances/{instance_id}",
    handle: (sim, r) => ok(instanceView(sim, getInstance(sim, r.params.instance_id!))),
  },
  ...tagRoutes("instances", "instance_id", (sim, id) => getInstance(sim, id)),

  { method: "GET", path: "/v1/volumes", handle: (sim, r) => listVolumes(sim, r.query) },
  { method: "POST", path: "/v1/volumes", handle: (sim, r) => ({ createdId: createVolume(sim, r.body).id, status: 202 }) },
  { method: "PUT", path: "/v1/volumes", handle: (sim, r) => volumeAction(sim, r.body) },
  { method: "GET", path: "/v1/volumes/trash", handle: (sim) => listTrash(sim) },
  {
    method: "GET",
    path: "/v1/volumes/{volume_id}",
    handle: (sim, r) => ok(volumeView(sim, getVolume(sim, r.params.volume_id!))),
  },
  {
    method: "DELETE",
    path: "/v1/volumes/{volume_id}",
    handle: (sim, r) => deleteVolumeById(sim, r.params.volume_id!, r.body, r.query),
  },
  ...tagRoutes("volumes", "volume_id", (sim, id) => getVolume(sim, id)),

  ...keyRoutes("/v1/ssh-keys"),
  ...keyRoutes("/v1/sshkeys"),

  { method: "GET", path: "/v1/scripts", handle: (sim, r) => listScripts(sim, r.query) },
  { method: "POST", path: "/v1/scripts", handle: (sim, r) => ({ createdId: addScript(sim, r.body).id, status: 201 }) },
  { method: "DELETE", path: "/v1/scripts", handle: (sim, r) => deleteScripts(sim, idsField(r.body, "scripts")) },
  { method: "GET", path: "/v1/scripts/{scriptId}", handle: (sim, r) => getScript(sim, r.params.scriptId!) },
  { method: "DELETE", path: "/v1/scripts/{scriptId}", handle: (sim, r) => deleteScripts(sim, [r.params.scriptId!]) },

  ...SERVERLESS_ROUTES,
];

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

interface CompiledRoute {
  route: Route;
  regex: RegExp;
  names: string[];
  literal: boolean;
}

const COMPILED: CompiledRoute[] = ROUTES.map((route) => {
  const names: string[] = [];
  const source = route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  return { route, regex: new RegExp(`^${source}$`), names, literal: names.length === 0 };
}).sort((a, b) => Number(b.literal) - Number(a.literal)); // /v1/volumes/trash before /v1/volumes/{id}

/** Finds the route for a request; `pathKnown` tells a wrong method from an unknown path. */
export function matchRoute(method: string, path: string): { route?: Route; params: Record<string, string>; pathKnown: boolean } {
  let pathKnown = false;
  for (const c of COMPILED) {
    const m = c.regex.exec(path);
    if (!m) continue;
    pathKnown = true;
    if (c.route.method !== method) continue;
    const params: Record<string, string> = {};
    c.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
    return { route: c.route, params, pathKnown };
  }
  return { params: {}, pathKnown };
}
