// Create calls answer with a bare UUID, a JSON string or {"id"} depending on the endpoint and API
// version; the providers must work with each (simulator option createIdFormat).
import { describe, expect, it } from "vitest";
import { sshKeyProvider, volumeProvider, type VolumeInputs } from "../../infra/providers";
import { must, startHarness, PUBLIC_KEY } from "./harness";

describe.each(["bare", "json-string", "object"] as const)("create answers as %s", (createIdFormat) => {
  it("SshKey and Volume get a usable id", async () => {
    const h = await startHarness({ createIdFormat });
    try {
      const key = must(await sshKeyProvider.create({ name: `k-${createIdFormat}`, publicKey: PUBLIC_KEY }));
      expect(key.id).toMatch(/^[0-9a-f-]{36}$/);
      const vol = must(await volumeProvider.create({ name: `v-${createIdFormat}`, size: 5, locationCode: "FIN-01" } as VolumeInputs));
      expect(vol.outs.volumeId).toBe(vol.id);
      await volumeProvider.delete!(vol.id, { ...vol.outs, permanent: true });
      await sshKeyProvider.delete!(key.id, key.outs);
      expect(h.takeContractProblems().requests).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
