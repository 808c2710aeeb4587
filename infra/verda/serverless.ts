// Verda Serverless Containers endpoints: container deployments (with scaling, status, replicas), secrets,
// file secrets and registry credentials. Names are the identifiers (no UUIDs). Secret-bearing bodies are
// only ever sent to their own endpoint, and the exchange observer sees them redacted (http.ts).
import type { VerdaHttp } from "./http";
import type {
  ContainerDeployment,
  ContainerDeploymentBody,
  ContainerDeploymentPatchBody,
  DeploymentStatus,
  FileSecretBody,
  FileSecretInfo,
  RegistryCredentialsBody,
  RegistryCredentialsInfo,
  ReplicaInfo,
  ScalingOptions,
  ScalingPatchBody,
  SecretBody,
  SecretInfo,
} from "./types";

/** The three write-only stores; each has list, create and delete-by-name. */
export type SecretStoreKind = "secret" | "file-secret" | "registry-credentials";

const STORE_ROUTES: Record<SecretStoreKind, { base: string; param: string }> = {
  secret: { base: "/secrets", param: "secret_name" },
  "file-secret": { base: "/file-secrets", param: "secret_name" },
  "registry-credentials": { base: "/container-registry-credentials", param: "credentials_name" },
};

export class VerdaServerless {
  constructor(private readonly http: VerdaHttp) {}

  // ---- deployments ----

  async listDeployments(): Promise<ContainerDeployment[]> {
    return this.http.list<ContainerDeployment>({ method: "GET", route: "/container-deployments", auth: true });
  }

  /** The deployment, or undefined when Verda does not know the name (404). */
  async getDeployment(name: string): Promise<ContainerDeployment | undefined> {
    return this.http.getOrUndefined<ContainerDeployment>(this.named("GET", "", name));
  }

  async createDeployment(body: ContainerDeploymentBody): Promise<ContainerDeployment> {
    return (await this.http.send({ method: "POST", route: "/container-deployments", body, auth: true })).body as ContainerDeployment;
  }

  /** PATCH /container-deployments/{name}: containers (image, env, command, mounts), compute, spot, registry. */
  async patchDeployment(name: string, body: ContainerDeploymentPatchBody): Promise<ContainerDeployment> {
    return (await this.http.send({ ...this.named("PATCH", "", name), body, repeatable: true })).body as ContainerDeployment;
  }

  async deleteDeployment(name: string): Promise<void> {
    await this.http.ignoreNotFound(() => this.http.send({ ...this.named("DELETE", "", name), repeatable: true }));
  }

  async getScaling(name: string): Promise<ScalingOptions | undefined> {
    return this.http.getOrUndefined<ScalingOptions>(this.named("GET", "/scaling", name));
  }

  async patchScaling(name: string, body: ScalingPatchBody): Promise<ScalingOptions> {
    return (await this.http.send({ ...this.named("PATCH", "/scaling", name), body, repeatable: true })).body as ScalingOptions;
  }

  async getStatus(name: string): Promise<DeploymentStatus | undefined> {
    const answer = await this.http.getOrUndefined<{ status?: DeploymentStatus }>(this.named("GET", "/status", name));
    return answer?.status;
  }

  async listReplicas(name: string): Promise<ReplicaInfo[]> {
    const answer = await this.http.getOrUndefined<{ list?: ReplicaInfo[] }>(this.named("GET", "/replicas", name));
    return answer?.list ?? [];
  }

  private named(method: "GET" | "PATCH" | "DELETE", suffix: string, name: string) {
    return { method, route: `/container-deployments/{deployment_name}${suffix}`, params: { deployment_name: name }, auth: true } as const;
  }

  // ---- secrets, file secrets, registry credentials (write-only: the API lists names, never values) ----

  async listSecrets(): Promise<SecretInfo[]> {
    return this.listStore<SecretInfo>("secret");
  }

  async listFileSecrets(): Promise<FileSecretInfo[]> {
    return this.listStore<FileSecretInfo>("file-secret");
  }

  async listRegistryCredentials(): Promise<RegistryCredentialsInfo[]> {
    return this.listStore<RegistryCredentialsInfo>("registry-credentials");
  }

  async listStore<T>(kind: SecretStoreKind): Promise<T[]> {
    return this.http.list<T>({ method: "GET", route: STORE_ROUTES[kind].base, auth: true });
  }

  /** Creates an entry; the body (with the secret) goes to this endpoint only. */
  async createInStore(kind: "secret", body: SecretBody): Promise<void>;
  async createInStore(kind: "file-secret", body: FileSecretBody): Promise<void>;
  async createInStore(kind: "registry-credentials", body: RegistryCredentialsBody): Promise<void>;
  async createInStore(kind: SecretStoreKind, body: SecretBody | FileSecretBody | RegistryCredentialsBody): Promise<void> {
    await this.http.send({ method: "POST", route: STORE_ROUTES[kind].base, body, auth: true });
  }

  /** Deletes by name (never `force`: Verda refuses while a deployment uses it); gone already is fine. */
  async deleteFromStore(kind: SecretStoreKind, name: string): Promise<void> {
    const { base, param } = STORE_ROUTES[kind];
    await this.http.ignoreNotFound(() => this.http.send({ method: "DELETE", route: `${base}/{${param}}`, params: { [param]: name }, auth: true, repeatable: true }));
  }
}
