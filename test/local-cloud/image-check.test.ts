// The local cloud refuses to start without the machines' image, naming the fix.
import { tmpdir } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { startLocalCloud } from "../../sim/local-cloud";

const saved = process.env.COMFYUME_SIM_ROOTFS;
afterEach(() => {
  // Assigning undefined would store the string "undefined".
  if (saved === undefined) delete process.env.COMFYUME_SIM_ROOTFS;
  else process.env.COMFYUME_SIM_ROOTFS = saved;
});

describe("local cloud: the machines' image", () => {
  it.each([["unset", undefined], ["not an image", tmpdir()]])("is refused at start when COMFYUME_SIM_ROOTFS is %s, naming npm run setup", async (_, value) => {
    if (value === undefined) delete process.env.COMFYUME_SIM_ROOTFS;
    else process.env.COMFYUME_SIM_ROOTFS = value;
    await expect(startLocalCloud({ loopbackNet: "127.74.0" })).rejects.toThrow(/COMFYUME_SIM_ROOTFS .*Run `npm run setup`.*scripts\/node-env/);
  });
});
