// The program: validate all configuration first (nothing is declared before that), then build the
// layer of this stack's phase and return its outputs.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadConfig, type RawConfig } from "./config";
import { idleLayer } from "./phases/idle";
import { monthLayer } from "./phases/month";
import { dayLayer } from "./phases/day";

export function buildProgram(raw?: RawConfig): Record<string, pulumi.Output<unknown>> {
  let cfg;
  try {
    cfg = loadConfig(raw);
  } catch (e) {
    // RunError: the engine prints the message without a stack trace.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
  switch (cfg.layer) {
    case "idle":
      return idleLayer(cfg);
    case "month":
      return monthLayer(cfg);
    case "day":
      return dayLayer(cfg);
  }
}
