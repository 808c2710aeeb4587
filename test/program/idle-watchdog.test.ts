// Phase `idle` with the end-of-day watchdog enabled: scripts uploaded to mello and the timer
// installed over SSH with a pinned host key; secrets only on stdin; removal disables the timer.
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PUB, MELLO_PUB, SECRETS, WORKER_HOST_KEY } from "../support/fixtures";
import { REMOTE_COMMAND, REMOTE_FILES, plaintextView, runProgram, unwrapSecret, type ProgramRun } from "../support/mock-program";

const WEBHOOK = "https://ntfy.example.net/comfyume-admin-topic";

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
      "comfyume:sshPrivateKey": SECRETS.sshPrivateKey,
      "comfyume:redisPassword": SECRETS.redisPassword,
      "comfyume:watchdog": { enabled: true, cutoff: "21:30", webhookUrl: WEBHOOK },
    },
    ["verda:clientSecret", "comfyume:r2AccessKeyId", "comfyume:r2SecretAccessKey", "comfyume:sshPrivateKey", "comfyume:redisPassword"],
  );
});

describe("watchdog on mello", () => {
  it("uploads the watchdog scripts and installs the timer after them", () => {
    expect(run.byName("watchdog").type).toBe("comfyume:mello:Watchdog");
    const files = run.byName("watchdog-scripts-files");
    expect(files.type).toBe(REMOTE_FILES);
    expect(Object.keys(unwrapSecret(files.inputs.files) ?? files.inputs.files)).toEqual(
      expect.arrayContaining(["/opt/comfyume/host/watchdog.sh", "/opt/comfyume/host/install-watchdog.sh", "/opt/comfyume/lib/common.sh"]),
    );
    const install = run.byName("watchdog-install");
    expect(install.type).toBe(REMOTE_COMMAND);
    expect(install.inputs.create).toMatch(/^timeout -k 30 \d+ bash '\/opt\/comfyume\/host\/install-watchdog.sh'/);
    expect(install.inputs.create).toContain("WATCHDOG_CUTOFF=21:30");
    expect(install.inputs.delete).toContain("--disable");
  });

  it("pins mello's host key and keeps the Redis password and webhook off the command line", () => {
    const install = run.byName("watchdog-install");
    expect(unwrapSecret(install.inputs.connection)).toMatchObject({ host: "127.0.0.1", port: 2222, user: "dev", hostKey: WORKER_HOST_KEY });
    const stdin = String(unwrapSecret<unknown>(install.inputs.stdin));
    expect(stdin).toContain(`REDISCLI_AUTH=${SECRETS.redisPassword}`);
    expect(stdin).toContain(`WATCHDOG_WEBHOOK_URL=${WEBHOOK}`);
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    expect(visible).not.toContain(SECRETS.redisPassword);
    expect(visible).not.toContain(WEBHOOK);
  });
});
