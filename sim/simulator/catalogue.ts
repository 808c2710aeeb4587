// The simulator's fixed catalogue: locations, instance types with prices, volume types, images.
// Prices follow verda-api.md §11.2 where a figure is published; the rest are plausible
// simulator figures (marked "sim") — cost tooling must read them from the API, never hard-code them.
import type { HardwareInfo, InstanceTypeView, Schemas, VolumeTypeName, VolumeTypeView } from "./types";
import { SERVERLESS_COMPUTE } from "./deployments";

export const LOCATIONS: Schemas["Location"][] = [
  { code: "FIN-01", name: "Finland 1", country_code: "FI" },
  { code: "FIN-02", name: "Finland 2", country_code: "FI" },
  { code: "FIN-03", name: "Finland 3", country_code: "FI" },
  { code: "ICE-01", name: "Iceland 1", country_code: "IS" },
];

interface TypeSpec {
  instance_type: string;
  model: string;
  name: string;
  manufacturer: string;
  gpus: number;
  gpuMemoryGb: number;
  cores: number;
  cpuModel: string;
  ramGb: number;
  price: number;
  spot: number;
  best_for: string[];
}

const GPU_IMAGES = [
  "ubuntu-24.04-cuda-12.8-open-docker",
  "ubuntu-24.04-cuda-12.8-open",
  "ubuntu-22.04-cuda-12.4-docker",
  "ubuntu-24.04",
  "ubuntu-22.04",
];
const CPU_IMAGES = ["ubuntu-24.04", "ubuntu-22.04"];

const TYPE_SPECS: TypeSpec[] = [
  // $3.56/h, spot $1.78/h: verda.com/pricing 2026-09-28 (1x H100 SXM5).
  { instance_type: "1H100.80S.32V", model: "H100", name: "H100 SXM5 80GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 80, cores: 32, cpuModel: "AMD Genoa", ramGb: 185, price: 3.56, spot: 1.78, best_for: ["Giant ML models", "Multi-GPU training"] },
  { instance_type: "1H100.80S.22V", model: "H100", name: "H100 SXM5 80GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 80, cores: 22, cpuModel: "AMD Genoa", ramGb: 187, price: 3.17, spot: 1.58, best_for: ["Giant ML models"] },
  // $1.797/h: HOSTFLEET 2026-09-27 (1x A100 80GB SXM4); spot sim.
  { instance_type: "1A100.22V", model: "A100", name: "A100 SXM4 80GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 80, cores: 22, cpuModel: "AMD EPYC", ramGb: 120, price: 1.797, spot: 0.9, best_for: ["Large ML models"] },
  // $1.282/h (2026-09-24), spot $0.2524/h (2026-04).
  { instance_type: "1A100.40S.22V", model: "A100", name: "A100 SXM4 40GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 40, cores: 22, cpuModel: "AMD EPYC", ramGb: 120, price: 1.282, spot: 0.2524, best_for: ["ML training"] },
  // sim
  { instance_type: "1V100.6V", model: "V100", name: "Tesla V100 16GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 16, cores: 6, cpuModel: "Intel Xeon", ramGb: 23, price: 0.39, spot: 0.14, best_for: ["Inference", "Small models"] },
  // sim
  { instance_type: "1RTX6000ADA.10V", model: "RTX6000ADA", name: "RTX 6000 Ada 48GB", manufacturer: "NVIDIA", gpus: 1, gpuMemoryGb: 48, cores: 10, cpuModel: "AMD EPYC", ramGb: 60, price: 0.83, spot: 0.29, best_for: ["Inference", "Rendering"] },
  // CPU: 0.006975 per vCPU-hour (CLI util/pricing.go), as a whole-instance price.
  { instance_type: "CPU.4V.16G", model: "CPU Node", name: "CPU Node", manufacturer: "AMD", gpus: 0, gpuMemoryGb: 0, cores: 4, cpuModel: "AMD EPYC", ramGb: 16, price: 0.0279, spot: 0.0140, best_for: ["Development", "Light workloads"] },
  { instance_type: "CPU.8V.32G", model: "CPU Node", name: "CPU Node", manufacturer: "AMD", gpus: 0, gpuMemoryGb: 0, cores: 8, cpuModel: "AMD EPYC", ramGb: 32, price: 0.0558, spot: 0.0279, best_for: ["Development", "Light workloads"] },
];

export interface CatalogueType extends TypeSpec {
  id: string;
  supported_os: string[];
}

export const INSTANCE_TYPES: CatalogueType[] = TYPE_SPECS.map((spec, i) => ({
  ...spec,
  id: `c01dd00d-0000-4972-ae4e-${String(i + 1).padStart(12, "0")}`,
  supported_os: spec.gpus > 0 ? GPU_IMAGES : CPU_IMAGES,
}));

export function findInstanceType(name: string): CatalogueType | undefined {
  return INSTANCE_TYPES.find((t) => t.instance_type === name);
}

/** Hardware blocks shared by `/instance-types` and instance objects. */
export function hardware(t: CatalogueType): Record<"cpu" | "gpu" | "gpu_memory" | "memory" | "storage", HardwareInfo> {
  return {
    cpu: { description: `${t.cores} CPU`, number_of_cores: t.cores, model: t.cpuModel },
    gpu: { description: t.gpus > 0 ? `${t.gpus}x ${t.name}` : "", number_of_gpus: t.gpus },
    gpu_memory: { description: t.gpus > 0 ? `${t.gpuMemoryGb}GB GPU RAM` : "", size_in_gigabytes: t.gpuMemoryGb },
    memory: { description: `${t.ramGb}GB RAM`, size_in_gigabytes: t.ramGb },
    storage: { description: "dynamic" },
  };
}

/** EUR figures are a fixed conversion; only the currency label matters to clients. */
const EUR_PER_USD = 0.92;
const money = (usd: number, currency: "usd" | "eur") => (currency === "eur" ? usd * EUR_PER_USD : usd);
const priceString = (n: number) => String(Math.round(n * 10000) / 10000);

export function instanceTypeView(t: CatalogueType, currency: "usd" | "eur"): InstanceTypeView {
  return {
    id: t.id,
    instance_type: t.instance_type,
    model: t.model,
    name: t.name,
    display_name: `${t.manufacturer} ${t.name}`,
    manufacturer: t.manufacturer,
    description: t.gpus > 0 ? "Dedicated Hardware Instance" : "CPU Instance",
    best_for: t.best_for,
    ...hardware(t),
    p2p: t.gpus > 1 ? "600 GB/s" : "",
    price_per_hour: priceString(money(t.price, currency)),
    spot_price: priceString(money(t.spot, currency)),
    dynamic_price: priceString(money(t.price, currency)),
    max_dynamic_price: priceString(money(t.price * 2, currency)),
    // What a running replica of this GPU bills (deployments.ts); models without serverless compute: a figure.
    serverless_price: priceString(money(SERVERLESS_COMPUTE[t.model]?.price ?? t.price * 0.55, currency)),
    serverless_spot_price: priceString(money(SERVERLESS_COMPUTE[t.model]?.spot ?? t.spot * 0.55, currency)),
    currency,
    deploy_warning: "",
    supported_os: t.supported_os,
  };
}

interface VolumeTypeSpec {
  type: VolumeTypeName;
  pricePerGbMonth: number;
  shared: boolean;
  creatable: boolean;
}

// NVMe $0.20/GB-month (SPEC example, AIXMAN, HOSTFLEET); SFS the same (COMFY); HDD sim (being decommissioned).
export const VOLUME_TYPES: VolumeTypeSpec[] = [
  { type: "NVMe", pricePerGbMonth: 0.2, shared: false, creatable: true },
  { type: "NVMe_Shared", pricePerGbMonth: 0.2, shared: true, creatable: true },
  // Since 2026-09-21 creating or resizing HDD returns 400.
  { type: "HDD", pricePerGbMonth: 0.05, shared: false, creatable: false },
];

export function findVolumeType(type: string): VolumeTypeSpec | undefined {
  return VOLUME_TYPES.find((v) => v.type === type);
}

/** Hours per month used by Verda for hourly volume prices. */
export const HOURS_PER_MONTH = 730;

export function volumeTypeView(v: VolumeTypeSpec, currency: "usd" | "eur"): VolumeTypeView {
  const perGb = money(v.pricePerGbMonth, currency);
  return {
    type: v.type,
    price: { price_per_month_per_gb: perGb, cps_per_gb: perGb / (HOURS_PER_MONTH * 3600), currency },
    is_shared_fs: v.shared,
    burst_bandwidth: v.shared ? 1000 : 2500,
    continuous_bandwidth: v.shared ? 800 : 2000,
    internal_network_speed: 50,
    iops: v.shared ? "50k" : "100k",
    throughput_gbps: v.shared ? 2 : 4,
  };
}

export const IMAGES: Schemas["Os"][] = [
  { id: "74a88795-5923-43aa-9afb-000000000001", image_type: "ubuntu-24.04-cuda-12.8-open-docker", name: "Ubuntu 24.04 + CUDA 12.8 Open + Docker", is_default: true, details: ["Ubuntu 24.04", "CUDA 12.8", "Docker"], category: "docker", is_cluster: false },
  { id: "74a88795-5923-43aa-9afb-000000000002", image_type: "ubuntu-24.04-cuda-12.8-open", name: "Ubuntu 24.04 + CUDA 12.8 Open", is_default: false, details: ["Ubuntu 24.04", "CUDA 12.8"], category: "ubuntu", is_cluster: false },
  { id: "74a88795-5923-43aa-9afb-000000000003", image_type: "ubuntu-22.04-cuda-12.4-docker", name: "Ubuntu 22.04 + CUDA 12.4 + Docker", is_default: false, details: ["Ubuntu 22.04", "CUDA 12.4", "Docker"], category: "docker", is_cluster: false },
  { id: "74a88795-5923-43aa-9afb-000000000004", image_type: "ubuntu-24.04", name: "Ubuntu 24.04", is_default: false, details: ["Ubuntu 24.04", "Minimal Image"], category: "ubuntu", is_cluster: false },
  { id: "74a88795-5923-43aa-9afb-000000000005", image_type: "ubuntu-22.04", name: "Ubuntu 22.04", is_default: false, details: ["Ubuntu 22.04", "Minimal Image"], category: "ubuntu", is_cluster: false },
];

export function findImage(imageTypeOrId: string): Schemas["Os"] | undefined {
  return IMAGES.find((i) => i.image_type === imageTypeOrId || i.id === imageTypeOrId);
}

export const LONG_TERM_PERIODS: Schemas["LongTermPeriodResponseDto"][] = [
  { code: "1_MONTH", name: "1 month", is_enabled: true, unit_name: "month", unit_value: 1, discount_percentage: 2 },
  { code: "3_MONTHS", name: "3 months", is_enabled: true, unit_name: "month", unit_value: 3, discount_percentage: 14 },
  { code: "12_MONTHS", name: "12 months", is_enabled: true, unit_name: "month", unit_value: 12, discount_percentage: 25 },
];
