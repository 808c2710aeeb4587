# shellcheck shell=bash
# Manifests, the per-set hash state (change detection) and SHA-256 checks of trees against manifests.
# Part of the shared library: common.sh sources it; never source it on its own.

# ---- manifests: "sha256<TAB>md5<TAB>size<TAB>relative path[<TAB>key]", sorted by path ----
# v1 (older runs) has four columns and every entry's bytes under object_key(sha256); v2 adds the
# key that holds the entry's bytes (a fresh copy of a bad object lives under a new key).

COMFYUME_MANIFEST_HEADER='# comfyume-manifest v1: sha256	md5	size	path'
COMFYUME_MANIFEST_PRUNE=()
# shellcheck disable=SC2034  # read by r2_backup_tree (r2-backup.sh)
COMFYUME_MANIFEST_HEADER_V2='# comfyume-manifest v2: sha256	md5	size	path	key'

# ---- hash state: each file's hashes at a given size, mtime and ctime (change detection) ----
# One file per set: a header line, then "path<TAB>size<TAB>mtime<TAB>ctime<TAB>sha256<TAB>md5". It
# lives with the data it describes (the SFS sets' on the SFS, a scratch's on the scratch, mello's
# on mello's disk), so it outlives the instance that is deleted every night. An entry is used only
# while size, mtime and ctime all match: any write changes the ctime, which cannot be set back, so
# a changed file is always read again. Damaged lines are ignored (that file is read again).
# Writers replace the file by rename: two hosts backing up one SFS at once each leave a whole file.
COMFYUME_HASH_STATE_HEADER='# comfyume-hash-state v2: path	size	mtime	ctime	sha256	md5'

# hash_state_load FILE: COMFYUME_HASH_STATE[path]="size<TAB>mtime<TAB>ctime<TAB>sha256<TAB>md5".
hash_state_load() {
  local file=$1 header rel size mtime ctime sha md5
  declare -gA COMFYUME_HASH_STATE=()
  [[ -n $file && -f $file ]] || return 0
  {
    IFS= read -r header || true
    if [[ $header != "$COMFYUME_HASH_STATE_HEADER" ]]; then
      log "hash state ${file} is of an older format: every file is read once"
      return 0
    fi
    while IFS=$'\t' read -r rel size mtime ctime sha md5; do
      [[ -n $rel && $size =~ ^[0-9]+$ && $mtime =~ ^[0-9.]+$ && $ctime =~ ^[0-9.]+$ && $sha =~ ^[0-9a-f]{64}$ && $md5 =~ ^[0-9a-f]{32}$ ]] || continue
      COMFYUME_HASH_STATE[$rel]="${size}	${mtime}	${ctime}	${sha}	${md5}"
    done
  } <"$file"
}

# hash_state_save ENTRIES FILE: atomically replace FILE with the header and ENTRIES (a temporary
# file in FILE's own directory, then a rename). A state that cannot be written costs time on the
# next run, never correctness: it is a warning.
hash_state_save() {
  local entries=$1 file=$2 dir tmpf
  dir=$(dirname "$file")
  tmpf="${dir}/.$(basename "$file").${HOSTNAME:-host}.$$.tmp"
  if mkdir -p "$dir" && { printf '%s\n' "$COMFYUME_HASH_STATE_HEADER" && cat "$entries"; } >"$tmpf" && mv -f "$tmpf" "$file"; then
    # Temporary files of runs killed mid-write (ours, by name) are dropped after a day.
    find "$dir" -maxdepth 1 -name '.hash-cache-*.tmp' -mmin +1440 -delete 2>/dev/null || true
    return 0
  fi
  rm -f "$tmpf" 2>/dev/null || true
  warn "cannot write the hash state ${file}: the next run reads every file of this set again"
}

# hash_state_inside SRC FILE: FILE's directory relative to the directory SRC when it lies inside
# it (it is then left out of the set), else nothing. Dies when it is SRC itself.
hash_state_inside() {
  local src_real state_real
  [[ -n $2 && -d $1 ]] || return 0
  src_real=$(realpath -m -- "$1")
  state_real=$(realpath -m -- "$(dirname "$2")")
  [[ $state_real != "$src_real" ]] || die "the hash state directory $(dirname "$2") is the backup source itself; use a directory outside it (--state-dir)"
  if [[ $state_real == "${src_real}/"* ]]; then printf '%s' "${state_real#"${src_real}"/}"; fi
}

# hash_state_file STATE_DIR BUCKET PREFIX: the hash state of one set (the name r2_backup_tree uses).
hash_state_file() { printf '%s/hash-cache-%s.tsv' "$1" "$(printf '%s' "$2/$3" | tr '/' '_')"; }
# r2_sample_cursor_file STATE_DIR BUCKET PREFIX: where the set's rotating read-back resumes.
r2_sample_cursor_file() { printf '%s/readback-cursor-%s' "$1" "$(printf '%s' "$2/$3" | tr '/' '_')"; }

# hash_state_seed FILE DEST MANIFEST: after a restore of MANIFEST into DEST that checked every
# file's SHA-256, record each entry as DEST holds it now (size, mtime and ctime as written, the
# checked SHA-256, the manifest's MD5 of that same content) in the hash state FILE, merged over
# what it held: the next backup of DEST reads none of these files again. Entries whose size on
# disk differs from the manifest are left out (they are read by the backup).
hash_state_seed() {
  local file=$1 dest=$2 manifest=$3 listing merged
  listing=$(mktemp)
  merged=$(mktemp)
  # The same find format as build_manifest: the backup compares these strings.
  manifest_entries "$manifest" | awk -F'\t' '{ print "./" $4 }' |
    (cd "$dest" && xargs -r -d '\n' bash -c 'find -H "$@" -maxdepth 0 -type f -printf "%p\t%s\t%T@\t%C@\n"' find) >"$listing" 2>/dev/null || true
  hash_state_load "$file"
  {
    awk -F'\t' -v OFS='\t' '
      FNR == NR { sub(/^\.\//, "", $1); st[$1] = $2 OFS $3 OFS $4; sz[$1] = $2; next }
      ($4 in st) && sz[$4] == $3 { print $4, st[$4], $1, $2; seeded[$4] = 1 }
      END { for (p in seeded) print p > "/dev/stderr" }' "$listing" <(manifest_entries "$manifest") 2>"${listing}.seeded"
    local rel
    local -A seeded=()
    while IFS= read -r rel; do seeded[$rel]=1; done <"${listing}.seeded"
    for rel in "${!COMFYUME_HASH_STATE[@]}"; do
      [[ -n ${seeded[$rel]:-} ]] || printf '%s\t%s\n' "$rel" "${COMFYUME_HASH_STATE[$rel]}"
    done
  } | LC_ALL=C sort >"$merged"
  log "hash state: seeded $(wc -l <"${listing}.seeded") restored file(s) into ${file}"
  hash_state_save "$merged" "$file"
  unset COMFYUME_HASH_STATE
  rm -f "$listing" "${listing}.seeded" "$merged"
}

# hash_file FILE [SIZE]: set HASHED_SHA256 and HASHED_MD5 of FILE from ONE read of it (a 25 GB
# model does not fit the page cache: a second pass would read it from disk again). tee feeds md5sum
# and the SHA-256, which run on two cores; both print into the command substitution, which ends
# only when both have exited, and the two digests are told apart by their length. The SHA-256:
# openssl (the CPU's SHA instructions: ~0.6 CPU-s per GB against ~1.9 for coreutils) from 1 MiB
# on; below (SIZE given), coreutils' sha256sum, whose start costs ~1.5 ms less CPU than openssl's.
hash_file() {
  local out line
  if [[ -n ${2:-} ]] && (($2 < 1048576)); then
    out=$({ tee >(md5sum >&3) <"$1" | sha256sum; } 3>&1) || return 1
  else
    out=$({ tee >(md5sum >&3) <"$1" | sha256_stream; } 3>&1) || return 1
  fi
  HASHED_SHA256=
  HASHED_MD5=
  while read -r line; do
    line=${line%% *}
    case ${#line} in 64) HASHED_SHA256=$line ;; 32) HASHED_MD5=$line ;; esac
  done <<<"$out"
  [[ -n $HASHED_SHA256 && -n $HASHED_MD5 ]]
}

# build_manifest SRC OUT [HASH_STATE]: manifest of every regular file under SRC (or of SRC itself
# when it is a file). HASH_STATE (hash_state_load) spares re-reading unchanged files; it is
# rewritten after each run, and left out of SRC when it lies inside it. Directories matching a
# pattern in COMFYUME_MANIFEST_PRUNE (find -path patterns relative to SRC) are left out. Logs
# "hashed N file(s), B bytes; reused M file(s), R bytes" (what was read, what the state spared).
build_manifest() {
  local src=$1 out=$2 cache=${3:-} base rel size mtime ctime sha md5 entry
  local hashed_files=0 hashed_bytes=0 reused_files=0 reused_bytes=0
  hash_state_load "$cache"
  local listing new_state
  listing=$(mktemp)
  new_state=$(mktemp)
  if [[ -f $src ]]; then
    base=$(dirname "$src")
    # -H: the source or its directory may be reached through a symlink (a symlinked mount point).
    find -H "$base" -maxdepth 1 -type f -name "$(basename "$src")" -printf '%P\t%s\t%T@\t%C@\n' >"$listing"
  elif [[ -d $src ]]; then
    base=$src
    # Our own partial downloads and restore staging are never part of a manifest, nor the hash state.
    local prune=(-name .comfyume-staging) pattern state_rel
    for pattern in "${COMFYUME_MANIFEST_PRUNE[@]}"; do prune+=(-o -path "${src}/${pattern}"); done
    state_rel=$(hash_state_inside "$src" "$cache")
    [[ -z $state_rel ]] || prune+=(-o -path "${src}/${state_rel}")
    find -H "$src" \( "${prune[@]}" \) -prune -o -type f ! -name '*.comfyume-partial' -printf '%P\t%s\t%T@\t%C@\n' |
      LC_ALL=C sort >"$listing"
  else
    rm -f "$listing" "$new_state"
    die "backup source ${src} does not exist"
  fi
  # shellcheck disable=SC2046  # two numbers
  progress_begin hashing $(awk -F'\t' '{ n++; b += $2 } END { printf "%d %.0f", n, b }' "$listing")
  {
    printf '%s\n' "$COMFYUME_MANIFEST_HEADER"
    while IFS=$'\t' read -r rel size mtime ctime; do
      # (every 256 files: a beat per file was a file write per file; a file hashed gets its own below)
      if (((hashed_files + reused_files) % 256 == 0)); then progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes)) "$rel"; fi
      [[ $rel != *$'\n'* && $rel != *$'\t'* ]] || die "file name with a tab or newline under ${src}: rename it"
      entry=${COMFYUME_HASH_STATE[$rel]:-}
      if [[ -n $entry && $entry == "${size}	${mtime}	${ctime}	"* ]]; then
        md5=${entry##*	}
        entry=${entry%	*}
        sha=${entry##*	}
        reused_files=$((reused_files + 1))
        reused_bytes=$((reused_bytes + size))
      else
        progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes)) "$rel"
        hash_file "${base}/${rel}" "$size" || die "cannot read ${base}/${rel}"
        sha=$HASHED_SHA256
        md5=$HASHED_MD5
        hashed_files=$((hashed_files + 1))
        hashed_bytes=$((hashed_bytes + size))
      fi
      printf '%s\t%s\t%s\t%s\n' "$sha" "$md5" "$size" "$rel"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$size" "$mtime" "$ctime" "$sha" "$md5" >>"$new_state"
    done <"$listing"
  } >"$out"
  progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes))
  progress_end
  rm -f "$listing"
  unset COMFYUME_HASH_STATE
  log "hashed ${hashed_files} file(s), ${hashed_bytes} bytes; reused ${reused_files} file(s), ${reused_bytes} bytes (hash state ${cache:-none})"
  if [[ -n $cache ]]; then hash_state_save "$new_state" "$cache"; fi
  rm -f "$new_state"
}

# manifest_entries FILE: "sha256<TAB>md5<TAB>size<TAB>path" of every entry (v1 or v2).
manifest_entries() { awk -F'\t' -v OFS='\t' '!/^#/ && NF { print $1, $2, $3, $4 }' "$1"; }

# object_key SHA256 [GENERATION]: content-addressed key, so unchanged files are never sent twice
# and an existing key is never overwritten with different bytes. Generation 2, 3, ... (suffix .gN)
# are fresh copies written when an earlier copy was found altered in R2 (append-only healing).
object_key() {
  if ((${2:-1} > 1)); then
    printf 'objects/%s/%s.g%s' "${1:0:2}" "$1" "$2"
  else
    printf 'objects/%s/%s' "${1:0:2}" "$1"
  fi
}

# manifest_keyed_entries FILE: "sha256<TAB>md5<TAB>size<TAB>path<TAB>key" for every entry: the
# key (relative to the set's prefix) holding the entry's bytes; object_key(sha256) for v1 lines.
# Fails on a key that is not a generation of the entry's own content key.
manifest_keyed_entries() {
  awk -F'\t' -v OFS='\t' '
    /^#/ || !NF { next }
    {
      base = "objects/" substr($1, 1, 2) "/" $1
      key = (NF >= 5 && $5 != "") ? $5 : base
      if (length($1) != 64 || $1 ~ /[^0-9a-f]/ || (key != base && (substr(key, 1, length(base) + 2) != base ".g" || substr(key, length(base) + 3) !~ /^[0-9]+$/))) {
        print "manifest line " NR ": invalid sha256 or object key for " $4 > "/dev/stderr"
        bad = 1
        exit 1
      }
      print $1, $2, $3, $4, key
    }
    END { exit bad }' "$1"
}

# object_generation KEY: 1 for objects/ab/<sha>, N for objects/ab/<sha>.gN, 0 if neither.
object_generation() {
  local base=${1##*/}
  if [[ $base != *.* ]]; then
    echo 1
  elif [[ ${base##*.g} =~ ^[0-9]+$ ]]; then
    echo "${base##*.g}"
  else
    echo 0
  fi
}

# manifest_totals FILE: "files bytes" of a manifest (0 0 for an empty or absent one).
manifest_totals() {
  if [[ -s $1 ]]; then
    manifest_entries "$1" | awk -F'\t' '{ n++; b += $3 } END { printf "%d %.0f\n", n, b }'
  else
    echo "0 0"
  fi
}

# manifest_path_problem REL: why the manifest path REL must not be restored, in PATH_PROBLEM (empty
# when REL is a plain relative path). Restore writes DEST/REL, so REL must stay inside DEST. (A
# variable, not printed: validate_manifest_paths calls it per entry, and a $(...) per entry cost
# ~4 ms each under load, seconds for a scratch of thousands of files.)
manifest_path_problem() {
  local rel=$1 part plain=false
  local -a parts
  PATH_PROBLEM=
  [[ -n $rel ]] || { PATH_PROBLEM='empty path'; return 0; }
  [[ $rel != /* ]] || { PATH_PROBLEM='absolute path'; return 0; }
  [[ $rel != *[[:cntrl:]]* ]] || { PATH_PROBLEM='control character in the path'; return 0; }
  IFS=/ read -ra parts <<<"$rel"
  for part in "${parts[@]}"; do
    [[ $part != .. ]] || { PATH_PROBLEM="'..' component"; return 0; }
    [[ -z $part || $part == . ]] || plain=true
  done
  [[ $plain == true ]] || { PATH_PROBLEM='empty path'; return 0; }
  [[ ${parts[0]} != .comfyume-staging ]] || PATH_PROBLEM="inside the restore's own staging directory"
}

# validate_manifest_paths MANIFEST DEST [LABEL]: die, naming LABEL (the manifest's key), the entry
# and why, unless every entry is a well-formed line whose path stays inside DEST: not absolute,
# no '..', not empty, no control characters or NULs, and no directory on the way (nor the entry
# itself) a symlink that leads outside DEST. Runs before anything of the manifest is written.
validate_manifest_paths() {
  local manifest=$1 dest=$2 label=${3:-$1} line n=0 sha md5 size rel key why dir real dest_real shown
  local fix="refusing to restore anything from this manifest. It was not written by backup-to-r2.sh or it was altered: check who can write to the bucket, and restore from an older manifest (seed-sfs.sh --manifest SET=KEY)"
  local -A dir_real=()
  if [[ $(tr -d '\000' <"$manifest" | wc -c) != "$(wc -c <"$manifest")" ]]; then
    die "unsafe manifest entry in ${label}: the manifest contains NUL bytes; ${fix}"
  fi
  dest_real=$(realpath -m -- "$dest")
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    [[ $line != \#* ]] || continue
    # v2 manifests add the object key as a fifth column (checked by manifest_keyed_entries).
    IFS=$'\t' read -r sha md5 size rel key <<<"$line"
    : "$key"
    shown=$rel
    [[ $rel != *[[:cntrl:]]* ]] || shown=$(printf '%q' "$rel")
    if [[ ! $sha =~ ^[0-9a-f]{64}$ || ! $size =~ ^[0-9]+$ || $line != *$'\t'*$'\t'*$'\t'* ]]; then
      die "unsafe manifest entry in ${label} (line ${n}): '$(printf '%q' "$line")' is not a manifest line (sha256, md5, size, path; a path with a newline breaks it); ${fix}"
    fi
    manifest_path_problem "$rel"
    why=$PATH_PROBLEM
    [[ -z $why ]] || die "unsafe manifest entry in ${label} (line ${n}): '${shown}': ${why}; ${fix}"
    # (the directory part without a dirname process per entry)
    dir=.
    [[ $rel != */* ]] || dir=${rel%/*}
    if [[ -z ${dir_real[$dir]:-} ]]; then
      dir_real[$dir]=$(realpath -m -- "${dest}/${dir}")
    fi
    real=${dir_real[$dir]}
    if [[ -L ${dest}/${rel} ]]; then real=$(realpath -m -- "${dest}/${rel}"); fi
    if [[ $real != "$dest_real" && $real != "${dest_real}/"* ]]; then
      die "unsafe manifest entry in ${label} (line ${n}): '${shown}' would be written through a symlink in ${dest} that leads outside it (to ${real}); nothing was restored. Move that symlink away (it is not part of any backup) and re-run"
    fi
  done <"$manifest"
  real=$(realpath -m -- "${dest}/.comfyume-staging")
  [[ $real == "${dest_real}/.comfyume-staging" ]] ||
    die "${dest}/.comfyume-staging is a symlink leading outside ${dest} (to ${real}); nothing was restored. Remove it and re-run"
}

# sha256_batch LIST OUT: "sha256<TAB>path" in OUT for every path of the NUL-separated LIST that
# could be read: one sha256sum start per few thousand files (xargs), not one per file, which is
# what a restore of many small scratch files spent its time on. Unreadable paths are left out
# (callers treat a path without a hash as failed). Manifest paths hold no control characters
# (validate_manifest_paths), so a tab-separated line is unambiguous; -z prints names unescaped.
sha256_batch() {
  local list=$1 out=$2 rec
  : >"$out"
  [[ -s $list ]] || return 0
  if sha256_openssl; then
    # "<sha256> *<path>" per file read (an unreadable one is skipped with an error on stderr).
    xargs -0 -r openssl dgst -sha256 -r -- <"$list" 2>/dev/null | sed -n 's/^\([0-9a-f]\{64\}\) \*/\1\t/p' >"$out" || true
    return 0
  fi
  while IFS= read -r -d '' rec; do
    printf '%s\t%s\n' "${rec:0:64}" "${rec:66}"
  done < <(xargs -0 -r sha256sum -z -- <"$list" 2>/dev/null || true) >"$out"
}

# sha256_openssl: true when the restore's SHA-256 is computed by openssl (with the CPU's SHA
# instructions: ~2 GB/s a core here, against ~0.55 GB/s for coreutils' sha256sum, which has none;
# measured in docs/backups.md). The restore hashes every byte it writes, so on a shared 2-core
# machine the hasher set its speed. COMFYUME_SHA256_TOOL=sha256sum forces coreutils.
sha256_openssl() {
  if [[ -z ${COMFYUME_SHA256_OPENSSL:-} ]]; then
    COMFYUME_SHA256_OPENSSL=no
    if [[ ${COMFYUME_SHA256_TOOL:-openssl} == openssl ]] && command -v openssl >/dev/null &&
      [[ $(printf abc | openssl dgst -sha256 -r 2>/dev/null) == ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad* ]]; then
      COMFYUME_SHA256_OPENSSL=yes
    fi
  fi
  [[ $COMFYUME_SHA256_OPENSSL == yes ]]
}

# sha256_stream: the SHA-256 of stdin ("<sha256> ..." on stdout), by openssl where sha256_openssl.
sha256_stream() {
  if sha256_openssl; then openssl dgst -sha256 -r; else sha256sum; fi
}

# sha256_load FILE...: COMFYUME_SHA256[path]=sha256 from sha256_batch's output file(s).
sha256_load() {
  local sha path
  declare -gA COMFYUME_SHA256=()
  while IFS=$'\t' read -r sha path; do COMFYUME_SHA256[$path]=$sha; done < <(cat -- "$@")
}

# check_tree_against_manifest DIR MANIFEST: every entry present with its SHA-256 (one batch).
check_tree_against_manifest() {
  local dir=$1 manifest=$2 sha md5 size rel got bad=0 work
  validate_manifest_paths "$manifest" "$dir"
  work=$(mktemp -d)
  manifest_entries "$manifest" >"${work}/entries.tsv"
  while IFS=$'\t' read -r sha md5 size rel; do printf '%s\0' "${dir}/${rel}"; done <"${work}/entries.tsv" >"${work}/paths"
  sha256_batch "${work}/paths" "${work}/sha"
  sha256_load "${work}/sha"
  while IFS=$'\t' read -r sha md5 size rel; do
    if [[ ! -f ${dir}/${rel} ]]; then
      log "MANIFEST CHECK: missing ${dir}/${rel}"
      bad=$((bad + 1))
      continue
    fi
    got=${COMFYUME_SHA256[${dir}/${rel}]:-unreadable}
    if [[ $got != "$sha" ]]; then
      log "MANIFEST CHECK: ${dir}/${rel} has sha256 ${got}, expected ${sha}"
      bad=$((bad + 1))
    fi
  done <"${work}/entries.tsv"
  unset COMFYUME_SHA256
  rm -rf "$work"
  ((bad == 0)) || die "manifest check of ${dir} failed for ${bad} file(s)"
}

