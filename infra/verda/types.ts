// API shapes, taken from the generated OpenAPI types (never hand-written). Responses are read
// tolerantly: enums are open (an unknown status is just a string) and unknown fields are ignored.
import type { components } from "./openapi-types";

type Schemas = components["schemas"];

/** Widens a closed string enum so an unknown value from the server still type-checks. */
type Open<T> = T extends string ? T | (string & {}) : T;
/** The declared fields without the generated `[key: string]: unknown` (which would swallow them). */
type KnownFields<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
/** A response shape whose listed enum fields are open and which tolerates unknown extra fields. */
type WithOpen<T, O extends keyof KnownFields<T>> = {
  [K in keyof KnownFields<T>]: K extends O ? Open<KnownFields<T>[K]> : KnownFields<T>[K];
} & { [key: string]: unknown };

export type DeployInstanceBody = Schemas["DeployInstancePublicDto"];
/** The generator makes `delete_permanently` required because it has a default; the document does not. */
export type InstanceActionBody = Omit<Schemas["PerformInstanceActionPublicDto"], "delete_permanently"> & { delete_permanently?: boolean };
export type InstanceActionResult = WithOpen<Schemas["InstanceActionResultDto"], "status" | "action">;
export type Instance = WithOpen<Schemas["GetInstanceResponsePublicApiDto"], "status" | "contract" | "pricing">;
export type InstanceStatus = Instance["status"];

export type CreateVolumeBody = Schemas["CreateVolumePublicDto"];
export type VolumeActionBody = Schemas["PerformVolumeActionPublicDto"];
export type VolumeType = Schemas["CreateVolumePublicDto"]["type"];
/** GET /volumes/{id} answers either shape; trashed/deleted volumes lack the mount fields. */
export type Volume = WithOpen<Schemas["GetVolumePublicResponseDto"], "status" | "type"> &
  Partial<Pick<Schemas["GetVolumeInTrashPublicResponseDto"], "deleted_at" | "is_permanently_deleted">>;

export type SshKey = Schemas["GetKeysResponseDto"];
export type AddSshKeyBody = Schemas["AddKeyDto"];
export type StartupScript = Schemas["GetScriptResponseDto"];
export type AddScriptBody = Schemas["AddScriptDto"];
export type TagBody = Schemas["TagDto"];
export type Tag = Schemas["TagResponseDto"];

export type InstanceTypeInfo = Schemas["InstanceType"];
export type Location = Schemas["Location"];
export type OsImage = Schemas["Os"];
export type TokenAnswer = Schemas["GetAccessTokenResponseDto"];
export type ClientCredentialsBody = Schemas["GetAccessTokenDto"];
export type RefreshTokenBody = Schemas["RefreshAccessTokenPublicApiDto"];

// ---- serverless containers (container deployments, secrets, registry credentials) ----
export type ContainerDeploymentBody = Schemas["CreateDeploymentPublicApiDto"];
export type ContainerDeploymentPatchBody = Schemas["PatchDeploymentPublicApiDto"];
export type ContainerDeployment = Omit<KnownFields<Schemas["DeploymentPublicApiResponseDto"]>, "containers"> & { containers: ContainerView[]; [key: string]: unknown };
export type ContainerSpec = Schemas["ContainerPublicApiDto"];
export type ContainerPatch = Schemas["PatchContainerPublicApiDto"];
/** The document types `image` as an object (`{image, last_updated_at}` in its example); read it tolerantly. */
export type ContainerView = Omit<KnownFields<Schemas["ContainerPublicApiResponseDto"]>, "image"> & { image: { image?: string; last_updated_at?: string } | string };
export type ContainerEnvVar = Schemas["EnvVarPublicApi"];
export type ContainerVolumeMount = NonNullable<ContainerSpec["volume_mounts"]>[number];
export type ComputeResource = Schemas["ComputeResource"];
export type ScalingOptions = Schemas["ScalingOptionsPublicApiDto"];
export type CreateScalingOptions = Schemas["CreateScalingOptionsPublicApiDto"];
export type ScalingPatchBody = Schemas["PatchScalingOptionsPublicApiDto"];
export type DeploymentStatus = Open<Schemas["GetDeploymentStatusResponseDto"]["status"]>;
export type ReplicaInfo = WithOpen<Schemas["ReplicaInfo"], "status">;
export type SecretBody = Schemas["CreateSecretPublicApiDto"];
export type SecretInfo = WithOpen<Schemas["GetSecretsPublicApiResponseDto"], "secret_type">;
export type FileSecretBody = Schemas["CreateFilesetSecretPublicApiDto"];
export type FileSecretInfo = WithOpen<Schemas["GetFilesetSecretsPublicApiResponseDto"], "secret_type">;
export type RegistryCredentialsBody = Schemas["CreateRegistryCredentialsPublicApiDto"];
export type RegistryCredentialsInfo = Schemas["GetRegistryCredentialsPublicApiResponseDto"];
