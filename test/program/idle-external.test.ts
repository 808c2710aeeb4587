// Phase `idle` with an external mello and existing buckets: nothing at Hetzner or Cloudflare.
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PUB, MELLO_PUB, SECRETS, WORKER_HOST_KEY } from "../support/fixtures";
import { plaintextView, isSecretOutput, promiseOf, runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram(
    "idle",
    {
      "verda:clientId": "comfyume-client",
      "verda:clientSecret": SECRETS.verdaClientSecret,
      "comfyume:phase": "idle",
      "comfyume:mello": { mode: "external", address: "127.0.0.1", sshPort: 2222, sshUser: "dev", hostKey: WORKER_HOST_KEY },
      "comfyume:backups": { mode: "existing", endpoint: "http://127.0.0.1:9000" },
      "comfyume:sshKeys": { admin: ADMIN_PUB, mello: MELLO_PUB },
      "comfyume:r2AccessKeyId": SECRETS.r2AccessKeyId,
      "comfyume:r2SecretAccessKey": SECRETS.r2SecretAccessKey,
    },
    ["verda:clientSecret", "comfyume:r2AccessKeyId", "comfyume:r2SecretAccessKey"],
  );
});

describe("external mello and existing buckets", () => {
  it("manages no Hetzner or Cloudflare resource", () => {
    expect(run.resources.filter((r) => r.type.startsWith("hcloud:") || r.type.startsWith("cloudflare:"))).toEqual([]);
    expect(run.byName("mello").type).toBe("comfyume:mello:Mello");
    expect(run.byName("backups").type).toBe("comfyume:backups:Backups");
  });

  it("exports the given address, user and port, and the given credentials as secrets", async () => {
    expect(await promiseOf(run.outputs.melloAddress)).toBe("127.0.0.1");
    expect(await promiseOf(run.outputs.melloSshUser)).toBe("dev");
    expect(await promiseOf(run.outputs.melloSshPort)).toBe(2222);
    expect(await promiseOf(run.outputs.r2Endpoint)).toBe("http://127.0.0.1:9000");
    expect(await isSecretOutput(run.outputs.r2AccessKeyId)).toBe(true);
    expect(await isSecretOutput(run.outputs.r2SecretAccessKey)).toBe(true);
    expect(await promiseOf(run.outputs.r2SecretAccessKey)).toBe(SECRETS.r2SecretAccessKey);
    expect(await promiseOf(run.outputs.bucketNames)).toEqual({
      models: "comfyume-model-vault-backups",
      cache: "comfyume-cache-backups",
      workerContainer: "comfyume-worker-container-backups",
      userFiles: "comfyume-user-files-backups",
    });
  });

  it("keeps the credentials out of plaintext inputs", () => {
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    expect(visible).not.toContain(SECRETS.r2SecretAccessKey);
  });
});
