// The Verda calls a rescue makes, over the project's client (auth, retries, error mapping).
import { verdaForMoney } from "../money/verda-reads";
import type { VerdaClientOptions } from "../verda/http";
import type { RescueVerda } from "./cloud";

export function rescueVerda(options: VerdaClientOptions): RescueVerda {
  const { client, api } = verdaForMoney(options);
  return {
    getInstance: (id) => client.getInstance(id),
    getVolume: (id) => client.getVolume(id),
    listInstanceTypes: () => client.listInstanceTypes(),
    listImages: (type) => client.listImages(type),
    deployInstance: (body) => client.deployInstance(body),
    instanceAction: (body) => client.instanceAction(body),
    isAvailable: (instanceType, location) => api.isAvailable({ instanceType, location, spot: false }),
  };
}
