// Routes of Verda Serverless Containers: deployments (with scaling, status, replicas), secrets, file
// secrets and registry credentials. Names are the identifiers; creates answer 201.
import { deleteFromStore, addFileSecret, addRegistryCredentials, addSecret, listFileSecrets, listRegistryCredentials, listSecrets } from "./secrets";
import { createDeployment, deleteDeployment, SERVERLESS_COMPUTE, deploymentStatus, deploymentView, getDeployment, patchDeployment, patchScaling, replicasView } from "./deployments";
import { ok } from "./http";
import type { Route } from "./routes";

const DEPLOYMENT = "/v1/container-deployments/{deployment_name}";

export const SERVERLESS_ROUTES: Route[] = [
  { method: "GET", path: "/v1/container-deployments", handle: (sim) => ok([...sim.deployments.values()].map(deploymentView)) },
  { method: "POST", path: "/v1/container-deployments", handle: (sim, r) => createDeployment(sim, r.body) },
  { method: "GET", path: DEPLOYMENT, handle: (sim, r) => ok(deploymentView(getDeployment(sim, r.params.deployment_name!))) },
  { method: "PATCH", path: DEPLOYMENT, handle: (sim, r) => patchDeployment(sim, r.params.deployment_name!, r.body) },
  { method: "DELETE", path: DEPLOYMENT, handle: (sim, r) => deleteDeployment(sim, r.params.deployment_name!) },
  { method: "GET", path: `${DEPLOYMENT}/scaling`, handle: (sim, r) => ok(getDeployment(sim, r.params.deployment_name!).scaling) },
  { method: "PATCH", path: `${DEPLOYMENT}/scaling`, handle: (sim, r) => patchScaling(sim, r.params.deployment_name!, r.body) },
  { method: "GET", path: `${DEPLOYMENT}/status`, handle: (sim, r) => ok({ status: deploymentStatus(sim, r.params.deployment_name!) }) },
  { method: "GET", path: `${DEPLOYMENT}/replicas`, handle: (sim, r) => ok(replicasView(sim, r.params.deployment_name!)) },

  { method: "GET", path: "/v1/secrets", handle: (sim) => listSecrets(sim) },
  { method: "POST", path: "/v1/secrets", handle: (sim, r) => addSecret(sim, r.body) },
  { method: "DELETE", path: "/v1/secrets/{secret_name}", handle: (sim, r) => deleteFromStore(sim, "secrets", r.params.secret_name!, r.query) },
  { method: "GET", path: "/v1/file-secrets", handle: (sim) => listFileSecrets(sim) },
  { method: "POST", path: "/v1/file-secrets", handle: (sim, r) => addFileSecret(sim, r.body) },
  { method: "DELETE", path: "/v1/file-secrets/{secret_name}", handle: (sim, r) => deleteFromStore(sim, "fileSecrets", r.params.secret_name!, r.query) },
  { method: "GET", path: "/v1/container-registry-credentials", handle: (sim) => listRegistryCredentials(sim) },
  { method: "POST", path: "/v1/container-registry-credentials", handle: (sim, r) => addRegistryCredentials(sim, r.body) },
  {
    method: "DELETE",
    path: "/v1/container-registry-credentials/{credentials_name}",
    handle: (sim, r) => deleteFromStore(sim, "registryCredentials", r.params.credentials_name!, r.query),
  },
  // Every simulated compute in sizes 1, 2, 4, 8; a `no_capacity` fault naming the compute makes it unavailable.
  {
    method: "GET",
    path: "/v1/serverless-compute-resources",
    handle: (sim) =>
      ok(Object.keys(SERVERLESS_COMPUTE).flatMap((name) => [1, 2, 4, 8].map((size) => ({ name, size, is_available: !sim.faults.noCapacity(name, "", false) })))),
  },
];
