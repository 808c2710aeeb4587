// Verda reads the money tools need beyond infra/verda/client.ts's named methods (balance,
// availability, volume types, trash, prices in a currency), sent through the client's HTTP layer
// (infra/verda/http.ts) so auth, retries and error mapping stay in one place.
import { VerdaClient } from "../verda/client";
import { VerdaHttp, type VerdaClientOptions } from "../verda/http";
import type { Instance, Volume } from "../verda/types";
import type { Currency, Placement } from "./types";

/** Price strings ("3.17") or numbers, as Verda sends both (verda-api.md §10.8). */
export interface InstanceTypePrice {
  instance_type: string;
  price_per_hour: string | number;
  spot_price: string | number;
  currency?: string;
  gpu?: { number_of_gpus?: number };
  /** GPU model, e.g. H100; with the serverless prices below, the serverless compute of that name. */
  model?: string;
  serverless_price?: string | number;
  serverless_spot_price?: string | number;
}

/** GET /serverless-compute-resources: a compute name and size, and whether Verda can run it now. */
export interface ServerlessComputeResource {
  name: string;
  size: number;
  is_available: boolean;
}

export interface VolumeTypePrice {
  type: string;
  price: { price_per_month_per_gb?: number; monthly_per_gb?: number; currency?: string };
}

export interface Balance {
  amount: number;
  currency: Currency;
}

/** The subset of the Verda API the money tools use; a fake in unit tests, the client in real use. */
export interface MoneyApi {
  balance(): Promise<Balance>;
  instanceTypes(currency: Currency): Promise<InstanceTypePrice[]>;
  volumeTypes(currency: Currency): Promise<VolumeTypePrice[]>;
  isAvailable(placement: Placement): Promise<boolean>;
  instances(): Promise<Instance[]>;
  volumes(): Promise<Volume[]>;
  trash(): Promise<Volume[]>;
  /** Serverless compute and its availability (optional: fakes of the instance path need not have it). */
  serverlessComputeResources?(): Promise<ServerlessComputeResource[]>;
}

function asArray<T>(body: unknown): T[] {
  return Array.isArray(body) ? (body as T[]) : [];
}

/** GO fears the availability boolean may come as the strings "true"/"false" (verda-api.md §10.8). */
function asBoolean(body: unknown, text: string): boolean {
  if (typeof body === "boolean") return body;
  return text.trim().replace(/"/g, "") === "true";
}

/** A client for the typed calls and an HTTP layer for the rest, sharing one access token. */
export function verdaForMoney(options: VerdaClientOptions): { client: VerdaClient; api: MoneyApi } {
  const shared = { ...options, tokenCache: options.tokenCache ?? {} };
  const client = new VerdaClient(shared);
  return { client, api: moneyApi(client, new VerdaHttp(shared)) };
}

export function moneyApi(client: VerdaClient, http: VerdaHttp): MoneyApi {
  return {
    async balance() {
      const answer = await http.send({ method: "GET", route: "/balance", auth: true });
      const b = answer.body as { amount?: unknown; currency?: unknown };
      const amount = Number(b?.amount);
      if (!Number.isFinite(amount)) throw new Error(`Verda GET /balance answered no amount: ${answer.text.slice(0, 200)}`);
      return { amount, currency: b.currency === "eur" ? "eur" : "usd" };
    },
    async instanceTypes(currency) {
      return asArray((await http.send({ method: "GET", route: "/instance-types", query: { currency }, auth: false })).body);
    },
    async volumeTypes(currency) {
      return asArray((await http.send({ method: "GET", route: "/volume-types", query: { currency }, auth: false })).body);
    },
    async isAvailable(p) {
      const answer = await http.send({
        method: "GET",
        route: "/instance-availability/{instance_type}",
        params: { instance_type: p.instanceType },
        query: { is_spot: String(p.spot), location_code: p.location },
        auth: true,
      });
      return asBoolean(answer.body, answer.text);
    },
    instances: () => client.listInstances(),
    volumes: () => client.listVolumes(),
    async trash() {
      return asArray((await http.send({ method: "GET", route: "/volumes/trash", auth: true })).body);
    },
    async serverlessComputeResources() {
      return asArray((await http.send({ method: "GET", route: "/serverless-compute-resources", auth: true })).body);
    },
  };
}

/**
 * The reads of one gate run: each sent at most once (preflight, placement and cost report all list the
 * instances, volumes and prices), and `sendAhead` starts the independent ones together instead of one after
 * another. A read sent ahead that the run never awaits may fail unobserved; one it awaits fails it as before.
 */
export function oneRoundReads(api: MoneyApi): MoneyApi & { sendAhead(): void } {
  const sent = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, read: () => Promise<T>): Promise<T> => {
    if (!sent.has(key)) sent.set(key, read());
    return sent.get(key) as Promise<T>;
  };
  const reads: MoneyApi = {
    balance: () => once("balance", () => api.balance()),
    instanceTypes: (currency) => once(`instance-types ${currency}`, () => api.instanceTypes(currency)),
    volumeTypes: (currency) => once(`volume-types ${currency}`, () => api.volumeTypes(currency)),
    isAvailable: (p) => once(`availability ${p.instanceType} ${p.location} ${p.spot}`, () => api.isAvailable(p)),
    instances: () => once("instances", () => api.instances()),
    volumes: () => once("volumes", () => api.volumes()),
    trash: () => once("trash", () => api.trash()),
    ...(api.serverlessComputeResources ? { serverlessComputeResources: () => once("serverless", () => api.serverlessComputeResources!()) } : {}),
  };
  const ignore = () => undefined;
  return {
    ...reads,
    sendAhead() {
      // The price lists need the balance's currency: they follow it, beside the lists.
      reads.balance().then((b) => Promise.all([reads.instanceTypes(b.currency), reads.volumeTypes(b.currency)])).catch(ignore);
      for (const read of [reads.instances(), reads.volumes(), reads.trash()]) read.catch(ignore);
    },
  };
}
