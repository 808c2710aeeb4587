// Verda REST client: typed endpoint methods over the HTTP layer in http.ts. Request and response
// shapes come from the generated OpenAPI types (types.ts); responses are read tolerantly.
import { isVerdaApiError, isVerdaNetworkError } from "./errors";
import { VerdaHttp, type VerdaClientMetrics, type VerdaClientOptions } from "./http";
import { parseCreatedId, singleOf } from "./ids";
import { backoffDelayMs } from "./retry";
import { VerdaServerless } from "./serverless";
import { instanceGone } from "./statuses";
import type {
  AddScriptBody,
  AddSshKeyBody,
  CreateVolumeBody,
  DeployInstanceBody,
  Instance,
  InstanceActionBody,
  InstanceActionResult,
  InstanceTypeInfo,
  Location,
  OsImage,
  SshKey,
  StartupScript,
  Tag,
  TagBody,
  Volume,
  VolumeActionBody,
} from "./types";

export { DEFAULT_BASE_URL, newMetrics, type VerdaClientMetrics, type VerdaClientOptions, type VerdaExchange } from "./http";

export class VerdaClient {
  private readonly http: VerdaHttp;

  constructor(options: VerdaClientOptions) {
    this.http = new VerdaHttp(options);
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /** Serverless Containers: deployments, secrets, file secrets, registry credentials (serverless.ts). */
  get serverless(): VerdaServerless {
    return new VerdaServerless(this.http);
  }

  /** API calls per route and time in backoff, for the benchmark and tests. */
  get metrics(): VerdaClientMetrics {
    return this.http.metrics;
  }

  // ---- catalogue (read-only) ----

  async listInstanceTypes(): Promise<InstanceTypeInfo[]> {
    return this.http.list<InstanceTypeInfo>({ method: "GET", route: "/instance-types", auth: false });
  }

  async listLocations(): Promise<Location[]> {
    return this.http.list<Location>({ method: "GET", route: "/locations", auth: true });
  }

  async listImages(instanceType?: string): Promise<OsImage[]> {
    return this.http.list<OsImage>({ method: "GET", route: "/images", query: { instance_type: instanceType }, auth: true });
  }

  // ---- instances ----

  async listInstances(): Promise<Instance[]> {
    return this.http.list<Instance>({ method: "GET", route: "/instances", auth: true });
  }

  /** The instance, or undefined when Verda no longer knows it (404). */
  async getInstance(id: string): Promise<Instance | undefined> {
    return this.http.getOrUndefined<Instance>({ method: "GET", route: "/instances/{instance_id}", params: { instance_id: id }, auth: true });
  }

  /**
   * Deploys and returns the new instance ID. 503 "No capacity" is raised at once. A 5xx or lost
   * answer may still have created the instance (and started billing), so before repeating the POST
   * the client looks for a fresh instance with the same hostname and adopts it.
   */
  async deployInstance(body: DeployInstanceBody): Promise<string> {
    const startedAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.http.send({ method: "POST", route: "/instances", body, auth: true, noRetry: [500, 502, 503, 504] });
        return parseCreatedId(answer.body, answer.text);
      } catch (e) {
        const ambiguous = (isVerdaApiError(e) && e.status >= 500 && e.status !== 503) || isVerdaNetworkError(e);
        if (!ambiguous || attempt >= this.http.policy.maxAttempts) throw e;
        const adopted = await this.findDeployedInstance(body.hostname, startedAt);
        if (adopted) return adopted;
        await this.http.backoff(backoffDelayMs(attempt, this.http.policy, this.http.options.random));
      }
    }
  }

  /** An instance with this hostname created since the deploy began (5 min allowance for clock skew). */
  private async findDeployedInstance(hostname: string, sinceMs: number): Promise<string | undefined> {
    const recent = (await this.listInstances()).filter(
      (i) => i.hostname === hostname && Date.parse(i.created_at) >= sinceMs - 5 * 60_000 && !instanceGone(i.status),
    );
    return recent.length === 1 ? recent[0]!.id : undefined;
  }

  /**
   * PUT /instances; results are empty on 204 (already in the requested state). `delete_permanently`
   * is always sent (false unless given), as verda-api.md §10.4 asks for explicit delete semantics.
   */
  async instanceAction(body: InstanceActionBody): Promise<InstanceActionResult[]> {
    const explicit = { ...body, delete_permanently: body.delete_permanently ?? false };
    const answer = await this.http.send({ method: "PUT", route: "/instances", body: explicit, auth: true, repeatable: true });
    return Array.isArray(answer.body) ? (answer.body as InstanceActionResult[]) : [];
  }

  async addInstanceTag(instanceId: string, tag: TagBody): Promise<Tag | undefined> {
    const answer = await this.http.send({ method: "POST", route: "/instances/{instance_id}/tags", params: { instance_id: instanceId }, body: tag, auth: true });
    return answer.body as Tag | undefined;
  }

  async deleteInstanceTag(instanceId: string, tagId: string): Promise<void> {
    await this.http.send({ method: "DELETE", route: "/instances/{instance_id}/tags/{tagId}", params: { instance_id: instanceId, tagId }, auth: true });
  }

  // ---- volumes ----

  async listVolumes(): Promise<Volume[]> {
    return this.http.list<Volume>({ method: "GET", route: "/volumes", auth: true });
  }

  /** The volume (deleted/trashed ones included, with status `deleted`), or undefined on 404. */
  async getVolume(id: string): Promise<Volume | undefined> {
    return this.http.getOrUndefined<Volume>({ method: "GET", route: "/volumes/{volume_id}", params: { volume_id: id }, auth: true });
  }

  async createVolume(body: CreateVolumeBody): Promise<string> {
    const answer = await this.http.send({ method: "POST", route: "/volumes", body, auth: true, noRetry: [503] });
    return parseCreatedId(answer.body, answer.text);
  }

  async volumeAction(body: VolumeActionBody): Promise<unknown> {
    return (await this.http.send({ method: "PUT", route: "/volumes", body, auth: true, repeatable: true })).body;
  }

  /** DELETE /volumes/{id}; Verda answers 204 when it was already deleted, and a 404 is treated the same. */
  async deleteVolume(id: string, isPermanent: boolean): Promise<void> {
    await this.http.ignoreNotFound(() =>
      this.http.send({ method: "DELETE", route: "/volumes/{volume_id}", params: { volume_id: id }, body: { is_permanent: isPermanent }, auth: true, repeatable: true }),
    );
  }

  // ---- SSH keys and startup scripts ----

  async createSshKey(body: AddSshKeyBody): Promise<string> {
    const answer = await this.http.send({ method: "POST", route: "/ssh-keys", body, auth: true });
    return parseCreatedId(answer.body, answer.text);
  }

  async getSshKey(id: string): Promise<SshKey | undefined> {
    return singleOf<SshKey>(await this.http.getOrUndefined<unknown>({ method: "GET", route: "/ssh-keys/{sshKeyId}", params: { sshKeyId: id }, auth: true }));
  }

  async deleteSshKey(id: string): Promise<void> {
    await this.http.ignoreNotFound(() => this.http.send({ method: "DELETE", route: "/ssh-keys/{sshKeyId}", params: { sshKeyId: id }, auth: true, repeatable: true }));
  }

  async createStartupScript(body: AddScriptBody): Promise<string> {
    const answer = await this.http.send({ method: "POST", route: "/scripts", body, auth: true });
    return parseCreatedId(answer.body, answer.text);
  }

  async getStartupScript(id: string): Promise<StartupScript | undefined> {
    return singleOf<StartupScript>(await this.http.getOrUndefined<unknown>({ method: "GET", route: "/scripts/{scriptId}", params: { scriptId: id }, auth: true }));
  }

  async deleteStartupScript(id: string): Promise<void> {
    await this.http.ignoreNotFound(() => this.http.send({ method: "DELETE", route: "/scripts/{scriptId}", params: { scriptId: id }, auth: true, repeatable: true }));
  }
}
