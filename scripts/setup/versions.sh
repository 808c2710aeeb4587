# shellcheck shell=bash
# Pinned tool versions. Keep PULUMI_VERSION equal to @pulumi/pulumi in package.json
# and COMMAND_PLUGIN_VERSION equal to @pulumi/command's `pulumi.version`.
# shellcheck disable=SC2034  # read by the scripts that source this file
# The newest release the Go module proxy serves with a matching @pulumi/pulumi on npm (2026-12-03: the proxy
# also lists pkg/v3.277.0, npm has no @pulumi/pulumi 3.277.0).
PULUMI_VERSION=3.276.0
# Commit of the pkg/v3.x tag, for upstream's language host (an untagged module, reachable only by commit).
# Found in the proxy's `.info` for pkg/v3@v3.x (`Origin.Hash`, as for 3.259.0: a05d88f24d05726fa3beae771bfdedb0c0c6a94a);
# the proxy gives no Origin for 3.276.0 and github.com is unreachable here, so it is left empty: the setup
# then builds the project's host (tools/pulumi-language-nodejs), as it did anyway (the proxy refuses the
# commit pseudo-version with 403).
PULUMI_PKG_COMMIT=
COMMAND_PLUGIN_VERSION=1.2.1
# v1.2.1 of pulumi/pulumi-command: its provider module has no tags of its own.
COMMAND_PLUGIN_COMMIT=7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25
NODE_MIN_MAJOR=22
NODE_VERSION=22.23.3
# The S3 server standing in for R2 in tests (scripts/setup/build-s3-server.sh, sim/local-cloud/s3-server.ts).
VERSITYGW_VERSION=1.8.0
# fasthttp (its HTTP server) raised from v1.73.0: before v1.76.0 it ignores "Expect: 100-Continue" as
# rclone sends it (capital C), so every upload over 2 MB waited rclone's 1 s timeout before its body.
VERSITYGW_FASTHTTP_VERSION=1.76.0
