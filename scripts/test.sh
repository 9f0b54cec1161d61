#!/usr/bin/env bash
# The project's one test command: installs what the end-to-end tests need (if
# missing; quick when already there), then runs every Rust test.
#
#   scripts/test.sh                 # cargo test --workspace --all-targets
#   scripts/test.sh -- --nocapture  # extra arguments go to cargo test
#
# Installs (idempotent, keyed on the lock files' hashes):
#   tests/e2e/node_modules  npm ci   (official TypeScript SDK, tests/e2e/package-lock.json)
#   .venv                   venv + pip install -r tests/e2e/requirements.txt (official Python SDK 1.x)
#   .venv-modern            venv + pip install -r tests/e2e/modern/requirements.txt (Python SDK 2.x)
# Exports for the tests that drive those clients:
#   MCP_HUB_E2E_NODE    node binary to run tests/e2e/ts_client.mjs
#   MCP_HUB_E2E_PYTHON  python with the SDK, to run tests/e2e/py_client.py
#   MCP_HUB_E2E_PYTHON_MODERN  python with the SDK 2.x, to run tests/e2e/modern/py_modern_client.py
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
command -v node >/dev/null || die "node not found (Node.js >= 20 is needed for tests/e2e)"
command -v npm >/dev/null || die "npm not found"
PYTHON_BOOTSTRAP="${PYTHON:-python3}"
command -v "$PYTHON_BOOTSTRAP" >/dev/null || die "$PYTHON_BOOTSTRAP not found (Python >= 3.10 is needed for tests/e2e)"

# --- Node: official TypeScript SDK -------------------------------------------
E2E="$ROOT/tests/e2e"
npm_stamp="$E2E/node_modules/.mcp-hub-lock.sha256"
want="$(hash_of "$E2E/package-lock.json")"
if [[ ! -f "$npm_stamp" || "$(cat "$npm_stamp")" != "$want" ]]; then
  log "npm ci in tests/e2e"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$want" >"$npm_stamp"
fi

# --- Python: official Python SDK in .venv ------------------------------------
VENV="$ROOT/.venv"
pip_stamp="$VENV/.mcp-hub-requirements.sha256"
want="$(hash_of "$E2E/requirements.txt")"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV"
  rm -rf "$VENV"
  "$PYTHON_BOOTSTRAP" -m venv "$VENV" || die "python venv failed (on Debian: apt-get install python3-venv)"
  rm -f "$pip_stamp"
fi
if [[ ! -f "$pip_stamp" || "$(cat "$pip_stamp")" != "$want" ]]; then
  log "pip install -r tests/e2e/requirements.txt into .venv"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$E2E/requirements.txt"
  printf '%s\n' "$want" >"$pip_stamp"
fi

# --- Python: official Python SDK 2.x (dual-era) in .venv-modern --------------
VENV_MODERN="$ROOT/.venv-modern"
pip_stamp="$VENV_MODERN/.mcp-hub-requirements.sha256"
want="$(hash_of "$E2E/modern/requirements.txt")"
if [[ ! -x "$VENV_MODERN/bin/python" ]] || ! "$VENV_MODERN/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV_MODERN"
  rm -rf "$VENV_MODERN"
  "$PYTHON_BOOTSTRAP" -m venv "$VENV_MODERN" || die "python venv failed (on Debian: apt-get install python3-venv)"
  rm -f "$pip_stamp"
fi
if [[ ! -f "$pip_stamp" || "$(cat "$pip_stamp")" != "$want" ]]; then
  log "pip install -r tests/e2e/modern/requirements.txt into .venv-modern"
  "$VENV_MODERN/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$E2E/modern/requirements.txt"
  printf '%s\n' "$want" >"$pip_stamp"
fi

export MCP_HUB_E2E_NODE="${MCP_HUB_E2E_NODE:-node}"
export MCP_HUB_E2E_PYTHON_MODERN="${MCP_HUB_E2E_PYTHON_MODERN:-$VENV_MODERN/bin/python}"
export MCP_HUB_E2E_PYTHON="${MCP_HUB_E2E_PYTHON:-$VENV/bin/python}"
log "MCP_HUB_E2E_NODE=$MCP_HUB_E2E_NODE ($("$MCP_HUB_E2E_NODE" --version))"
log "MCP_HUB_E2E_PYTHON=$MCP_HUB_E2E_PYTHON ($("$MCP_HUB_E2E_PYTHON" -c 'import importlib.metadata as m, sys; print(sys.version.split()[0], "mcp", m.version("mcp"))'))"

log "cargo test --workspace --all-targets $*"
exec cargo test --workspace --all-targets "$@"
