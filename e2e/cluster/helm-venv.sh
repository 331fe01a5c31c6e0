#!/usr/bin/env bash
# Makes, once, the Python venv that e2e/cluster/helm.py runs in, and prints its python. There is
# no helm binary on these machines; the PyPI wheel helm-sdkpy ships the real Helm Go library
# (a linux-amd64 .so) with Python bindings. Later runs find the venv and return at once.
#
#   $(e2e/cluster/helm-venv.sh) e2e/cluster/helm.py lint charts/raftnet-operator
#
# (helm.py also finds the venv by itself: `python3 e2e/cluster/helm.py ...` works too.)
# The venv also gets `bin/helm`, a link to its python: Helm names the field manager of the
# objects it creates after the program's name, so that they read `helm` rather than `python`.
#
# Env: RAFTNET_CACHE (default /var/cache/raftnet), PYTHON (default python3; 3.11 works, with
# --ignore-requires-python).
set -euo pipefail

VENV="${RAFTNET_CACHE:-/var/cache/raftnet}/helm-venv"
PY="$VENV/bin/python"
# What helm.py was written against (helm-sdkpy's options changed between releases); a change
# here rebuilds the venv.
PACKAGES=(helm-sdkpy==0.1.32 cffi PyYAML)
STAMP="$VENV/.raftnet-ready"
WANT="${PACKAGES[*]}"

ready() { [[ -x "$PY" && -L "$VENV/bin/helm" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; }
if ready; then echo "$PY"; exit 0; fi

log() { echo "helm-venv: $*" >&2; }
mkdir -p "$(dirname "$VENV")"
# Test runners start several helm.py at once: one makes the venv, the others wait for it.
exec 9>"$VENV.lock"
flock 9
if ready; then echo "$PY"; exit 0; fi

log "making $VENV (${PACKAGES[*]})"
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV" >&2
"$PY" -m pip install --quiet --disable-pip-version-check --ignore-requires-python \
  "${PACKAGES[@]}" >&2
"$PY" -c 'import helm_sdkpy, yaml; helm_sdkpy.get_version()' >&2
ln -s python "$VENV/bin/helm"
echo "$WANT" >"$STAMP"
log "ready: $PY"
echo "$PY"
