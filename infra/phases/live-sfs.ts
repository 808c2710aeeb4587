// Re-reads the SFS's mount data from the Verda API on every run of the day stack. The month
// stack's recorded outputs go stale when Verda changes the pseudo path (a rename or re-creation
// does it silently), which used to break every mount; the live value wins and the change re-runs
// mount-sfs. Without Verda credentials in the program (unit tests) the recorded value is used.
import * as pulumi from "@pulumi/pulumi";
import { VerdaClient } from "../verda/client";
import { sfsMountTarget } from "../../components/sfs-target";

export interface VerdaCredentials {
  clientId: string;
  clientSecret: string;
  baseUrl?: string;
}

export function programVerdaCredentials(): VerdaCredentials | undefined {
  const cfg = new pulumi.Config("verda");
  const clientId = cfg.get("clientId") ?? process.env.VERDA_CLIENT_ID;
  const clientSecret = cfg.get("clientSecret") ?? process.env.VERDA_CLIENT_SECRET;
  const baseUrl = cfg.get("baseUrl") ?? process.env.VERDA_BASE_URL;
  return clientId && clientSecret ? { clientId, clientSecret, baseUrl } : undefined;
}

export function liveSfsMountTarget(
  sfsId: pulumi.Output<string>,
  recorded: pulumi.Output<string>,
  locationCode: pulumi.Output<string>,
  credentials: VerdaCredentials | undefined,
): pulumi.Output<string> {
  if (!credentials) return recorded;
  return pulumi.all([sfsId, recorded, locationCode]).apply(async ([id, rec, location]) => {
    const client = new VerdaClient(credentials);
    const volume = await client.getVolume(id);
    if (!volume || String(volume.status) === "deleted") {
      throw new Error(`The month's SFS ${id} does not exist at Verda: bring the month stack up first (scripts/pulumi up --stack <env>-month).`);
    }
    const live = sfsMountTarget(
      { mountCommand: volume.mount_command, target: volume.target, pseudoPath: volume.pseudo_path },
      location,
    );
    if (live !== rec) {
      pulumi.log.warn(`The SFS mount target changed at Verda (${rec} -> ${live}); using the live one. Refresh the month stack to record it.`);
    }
    return live;
  });
}
