"use strict";
// The policy pack's entry (package.json `main`): index.ts, started from its bundle (../infra/start/bundle.cjs explains why).
require("../infra/start/bundle.cjs").startBundled("policy/index.ts", "policy");
