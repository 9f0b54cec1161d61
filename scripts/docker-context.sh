#!/usr/bin/env bash
# Checks that docker/Dockerfile's build stage copies everything `cargo build --bin mcp-hub`
# reads, without a Docker engine (CI machines have none): copies what the stage's COPY lines
# name (minus .dockerignore's target/ and node_modules/) into a temp dir and type-checks the
# hub there with the same --locked flag. A new workspace member, a file read by include_str!
# or a build script outside the copied dirs fails here instead of in `docker build`.
#
#   scripts/docker-context.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERFILE="$ROOT/docker/Dockerfile"
CTX="$(mktemp -d "${TMPDIR:-/tmp}/mcp-hub-docker-context.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT

# COPY lines of the first (build) stage, without --from (those copy between stages).
copies="$(awk '/^FROM /{n++} n==1 && /^COPY / && !/--from=/' "$DOCKERFILE")"
[[ -n "$copies" ]] || { echo "docker-context: no COPY lines in the build stage of $DOCKERFILE" >&2; exit 1; }
while read -r _ args; do
  read -ra parts <<<"$args"
  dest="${parts[-1]}"
  unset 'parts[-1]'
  for src in "${parts[@]}"; do
    [[ -e "$ROOT/$src" ]] || { echo "docker-context: COPY $src: no such path in the repository" >&2; exit 1; }
    if [[ "$dest" == */ || "$dest" == "." || "$dest" == "./" ]]; then
      mkdir -p "$CTX/$dest"
      cp -a "$ROOT/$src" "$CTX/$dest"
    else
      mkdir -p "$(dirname "$CTX/$dest")"
      cp -a "$ROOT/$src" "$CTX/$dest"
    fi
  done
done <<<"$copies"
rm -rf "$CTX"/*/target "$CTX"/*/node_modules

echo "docker-context: the build stage copies: $(cd "$CTX" && echo *)"
# The repository's target dir: registry dependencies are already checked there.
(cd "$CTX" && CARGO_TARGET_DIR="$ROOT/target" cargo check --locked --offline --bin mcp-hub)
echo "docker-context: ok"
