// Bash drivers of the engines compared by `npm run bench:scale -- --engine ...` (docs/backups.md,
// "Choosing the engine"). Each driver reads the keys on stdin (read_secrets), so they never appear
// on a command line, and runs one part (SFS or scratch) of one night, or one restore. The
// "instance" is new each night: COMFYUME_ROOT (its OS disk, where restic's cache lives) is fresh.
// Arguments: ENDPOINT DATA BUCKET PART [DEST].

export type EngineName = "project" | "restic" | "rclone-checksum";

const prelude = (lib: string) => `set -euo pipefail
source ${JSON.stringify(lib)}
read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
R2_ENDPOINT=$1 DATA=$2 BUCKET=$3 PART=$4 DEST=\${5:-}
r2_setup
`;

/** restic 0.14: repository per part on the endpoint; the night's check reads back bytes. */
export function resticBackup(lib: string): string {
  return `${prelude(lib)}
export AWS_ACCESS_KEY_ID=$R2_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$R2_SECRET_ACCESS_KEY RESTIC_PASSWORD=bench-only
export RESTIC_REPOSITORY="s3:\${R2_ENDPOINT}/\${BUCKET}/restic-\${PART}" RESTIC_CACHE_DIR="\${COMFYUME_ROOT}/restic-cache"
restic() { command restic -o s3.region=auto "$@"; }
restic cat config >/dev/null 2>&1 || restic init >/dev/null
restic backup --json --host bench --exclude "\${DATA}/.comfyume" "$DATA" >"\${COMFYUME_ROOT}/summary.json"
added=$(jq -r 'select(.message_type == "summary") | .data_added' "\${COMFYUME_ROOT}/summary.json")
log "restic: data_added \${added} bytes"
# Verification that reads bytes back: the whole repository on night 1, else a random subset of
# packs of the size the night added (restic cannot select the night's own packs).
if [[ $(restic snapshots --json --host bench | jq length) == 1 ]]; then
  restic check --read-data
elif ((added > 0)); then
  restic check --read-data-subset "$(( (added + 1023) / 1024 ))k"
else
  restic check
fi
`;
}

export function resticRestore(lib: string): string {
  return `${prelude(lib)}
export AWS_ACCESS_KEY_ID=$R2_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$R2_SECRET_ACCESS_KEY RESTIC_PASSWORD=bench-only
export RESTIC_REPOSITORY="s3:\${R2_ENDPOINT}/\${BUCKET}/restic-\${PART}" RESTIC_CACHE_DIR="\${COMFYUME_ROOT}/restic-cache"
restic() { command restic -o s3.region=auto "$@"; }
restic restore latest --host bench --target "$DEST"
`;
}

/** rclone copy --checksum from a hasher remote whose MD5 cache lives with the data (on the SFS). */
export function rcloneChecksumBackup(lib: string): string {
  return `${prelude(lib)}
state="\${DATA}/.comfyume/rclone-hasher"
mkdir -p "$state"
hasher() {
  RCLONE_CONFIG_SRC_TYPE=hasher RCLONE_CONFIG_SRC_REMOTE="$DATA" RCLONE_CONFIG_SRC_HASHES=md5 RCLONE_CONFIG_SRC_MAX_AGE=off \\
    r2_rclone --cache-dir "$state" "$@"
}
# copy, never sync: sync deletes. A changed file overwrites its object (no earlier night).
hasher copy --checksum --transfers 16 --checkers 16 --exclude '/.comfyume/**' -v \\
  src: "r2:\${BUCKET}/rclone-\${PART}" 2>"\${COMFYUME_ROOT}/copy.log" || { cat "\${COMFYUME_ROOT}/copy.log" >&2; exit 1; }
sed -n 's/^.*INFO  : \\(.*\\): Copied (.*$/\\1/p' "\${COMFYUME_ROOT}/copy.log" >"\${COMFYUME_ROOT}/copied"
log "rclone-checksum: copied $(wc -l <"\${COMFYUME_ROOT}/copied") file(s)"
# Read back what the night sent, byte for byte against the local file.
if [[ -s \${COMFYUME_ROOT}/copied ]]; then
  r2_rclone check --download --one-way --files-from "\${COMFYUME_ROOT}/copied" "$DATA" "r2:\${BUCKET}/rclone-\${PART}"
fi
`;
}

export function rcloneChecksumRestore(lib: string): string {
  return `${prelude(lib)}
r2_rclone copy --fast-list --transfers 16 --checkers 16 "r2:\${BUCKET}/rclone-\${PART}" "$DEST"
`;
}
