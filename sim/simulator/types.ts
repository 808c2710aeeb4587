// Shared types of the Verda API simulator: options, fault rules, internal records and the
// API shapes it renders (taken from the generated OpenAPI types, corrected only where the
// document itself is wrong about the live API — see test/support/openapi-allowlist.ts).
import type { components } from "../../infra/verda/openapi-types";

export type Schemas = components["schemas"];

/** The generated shapes carry an index signature (open objects); keep only their named fields. */
type Known<T> = { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
/** Replace some properties of a generated shape (used where the document under-describes a field). */
type Override<T, U> = { [K in keyof Known<T> as K extends keyof U ? never : K]: Known<T>[K] } & U;

export interface HardwareInfo {
  description: string;
  number_of_cores?: number;
  number_of_gpus?: number;
  size_in_gigabytes?: number;
  model?: string;
}

export type InstanceStatus = Schemas["GetInstanceResponsePublicApiDto"]["status"];
export type VolumeStatus = Schemas["GetVolumePublicResponseDto"]["status"];
export type VolumeTypeName = Schemas["VolumeType"]["type"];
export type InstanceAction = Schemas["PerformInstanceActionPublicDto"]["action"];
export type VolumeAction = Schemas["PerformVolumeActionPublicDto"]["action"];
export type Tag = Schemas["TagResponseDto"];
export type TagInput = Schemas["TagDto"];

/** `ip`, `startup_script_id`, `os_volume_id` are null until known (live API, verda-api.md §4). */
export type InstanceView = Override<
  Schemas["GetInstanceResponsePublicApiDto"],
  {
    ip: string | null;
    startup_script_id: string | null;
    os_volume_id: string | null;
    cpu: HardwareInfo;
    gpu: HardwareInfo;
    gpu_memory: HardwareInfo;
    memory: HardwareInfo;
    storage: HardwareInfo;
  }
>;

/** Summary of an attached instance as the document's own example shows it (verda-api.md §7.1). */
export interface VolumeInstanceRef {
  id: string;
  auto_rental_extension: null;
  ip: string | null;
  instance_type: string;
  status: string;
  os_volume_id: string | null;
  hostname: string;
}

/** Detached volumes have null `instance_id`/`target`; pay-as-you-go volumes have null `long_term`. */
export type VolumeView = Override<
  Schemas["GetVolumePublicResponseDto"],
  { instance_id: string | null; target: string | null; long_term: null; instances: VolumeInstanceRef[] }
>;
export type TrashedVolumeView = Override<
  Schemas["GetVolumeInTrashPublicResponseDto"],
  { instance_id: string | null; target: string | null; instances: VolumeInstanceRef[] }
>;

export type InstanceTypeView = Override<
  Schemas["InstanceType"],
  { description: string; cpu: HardwareInfo; gpu: HardwareInfo; gpu_memory: HardwareInfo; memory: HardwareInfo; storage: HardwareInfo }
>;
export type VolumeTypeView = Override<
  Schemas["VolumeType"],
  { price: { price_per_month_per_gb: number; cps_per_gb: number; currency: "usd" | "eur" } }
>;

// ---------------------------------------------------------------- internal records

export type InstanceFate = "normal" | "stuck_provisioning" | "error" | "no_capacity" | "installation_failed";

export interface InstanceRecord {
  id: string;
  instance_type: string;
  image: string;
  os_name: string;
  hostname: string;
  description: string;
  location: string;
  is_spot: boolean;
  contract: InstanceView["contract"];
  status: InstanceStatus;
  ip: string | null;
  os_volume_id: string | null;
  startup_script_id: string | null;
  ssh_key_ids: string[];
  tags: Tag[];
  created_at: string;
  jupyter_token: string;
  price_per_hour: number;
  fate: InstanceFate;
  /** Volumes to create or attach when provisioning starts. */
  pending: {
    os_volume: { name: string; size: number } | null;
    /** Set when `image` is a detached OS volume to boot from. */
    boot_volume_id: string | null;
    volumes: Array<{ name: string; size: number; type: VolumeTypeName }>;
    existing_volumes: string[];
  };
  deleted: boolean;
  /** onInstanceRunning has fired. */
  announced: boolean;
}

export interface VolumeRecord {
  id: string;
  name: string;
  type: VolumeTypeName;
  size: number;
  location: string;
  status: VolumeStatus;
  is_os_volume: boolean;
  /** Instances the volume is attached to (block: at most one; SFS: any number). */
  instance_ids: string[];
  /** Device name for block volumes (`vda` for OS volumes), null when detached. */
  device: string | null;
  pseudo_path: string;
  created_at: string;
  ssh_key_ids: string[];
  tags: Tag[];
  /** Simulated epoch ms when moved to trash, null when live. */
  trashed_at: number | null;
  is_permanently_deleted: boolean;
}

export interface SshKeyRecord {
  id: string;
  name: string;
  key: string;
  fingerprint: string | null;
  created_at: string;
}

export interface ScriptRecord {
  id: string;
  name: string;
  script: string;
  created_at: string;
  seq: number;
}

// ---------------------------------------------------------------- options

export interface Timing {
  /** ordered -> provisioning */
  orderedMs: number;
  /** provisioning -> running */
  provisioningMs: number;
  /** shutdown/start/force_shutdown take effect after this */
  instanceActionMs: number;
  /** deleting -> gone */
  instanceDeleteMs: number;
  /** volume ordered -> detached/created */
  volumeCreateMs: number;
  /** attaching -> attached/exported, detaching -> detached */
  volumeAttachMs: number;
  /** Simulated time a volume stays restorable in trash (live: 96 h). */
  trashRetentionSimMs: number;
  /** A new container replica: `initializing` for this long, then `running` (and billed). */
  replicaColdStartMs: number;
}

export interface RateLimitConfig {
  projectPerWindow: number;
  endpointPerWindow: number;
  windowMs: number;
  /** "METHOD /v1/path" -> endpoint limit replacing `endpointPerWindow` for that exact path. */
  overrides: Record<string, number>;
}

export type CreateIdFormat = "bare" | "json-string" | "object";

export interface SimulatorOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  clientId?: string;
  clientSecret?: string;
  /** Access-token lifetime in real ms (default 3 600 000, as live). */
  tokenTtlMs?: number;
  /** Refresh-token lifetime in real ms (default 24 h). */
  refreshTokenTtlMs?: number;
  timing?: Partial<Timing>;
  /** Simulated ms per real ms for billing (default 1; 3600 makes one real second a simulated hour). */
  speed?: number;
  /** Simulated clock start (ISO string or epoch ms); default now. */
  startTime?: string | number;
  /** Starting credit (default 1000). */
  balance?: number;
  currency?: "usd" | "eur";
  /** false disables rate limiting (the in-process default); true or a partial config enables it. */
  rateLimits?: boolean | Partial<RateLimitConfig>;
  faults?: FaultRule[];
  /** What `delete` does with the OS volume when `volume_ids` is omitted or null (default "keep", as observed live). */
  osVolumeOnImplicitDelete?: "keep" | "delete";
  /** When a new instance gets its IP (default "provisioning", verda-api.md §12). */
  ipAssignedAt?: "provisioning" | "running";
  /** Body of create responses (default "bare": the UUID as text/plain, as live). */
  createIdFormat?: CreateIdFormat;
  /** Whether volumes in trash keep billing (default true, as reported live). */
  trashBills?: boolean;
  /** At zero balance, discontinue instances and move volumes to trash, as live (default false). */
  discontinueAtZeroBalance?: boolean;
  /** Types available per location; default: every type everywhere. */
  capacity?: Record<string, string[]>;
  /** Picks the IP of each new instance (default: 203.0.113.x, TEST-NET-3); e.g. loopback addresses for local SSH hosts. */
  ipAllocator?: () => string;
  /** Called once when an instance reaches `running`. */
  onInstanceRunning?: (instance: InstanceView) => void | Promise<void>;
  /** Keep every API request/response for conformance checks (default true; capped). */
  recordExchanges?: boolean;
  log?: (line: string) => void;
}

export type { FaultRule } from "./faults";
import type { FaultRule } from "./faults";

export interface Exchange {
  method: string;
  /** Path with query string, as requested. */
  url: string;
  requestContentType: string | null;
  requestBody: string;
  status: number;
  responseContentType: string | null;
  responseBody: string;
}
