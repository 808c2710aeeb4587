"use strict";
// The Pulumi program's entry (Pulumi.yaml `main`): index.ts, started from its bundle (./bundle.cjs explains why).
module.exports = require("./bundle.cjs").startBundled("index.ts", "program");
