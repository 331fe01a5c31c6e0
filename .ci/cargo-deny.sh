#!/usr/bin/env bash
# cargo-deny, pinned, installed once into a cache outside the repository keyed by version.
#
#   .ci/cargo-deny.sh          installs it if the cached binary is missing; prints its path
#   .ci/cargo-deny.sh check    also runs the checks of deny.toml (what .ci/run does)
#
# `check` always runs bans, licenses and sources. The advisories check needs the RustSec
# advisory database, a git repository that only GitHub serves (no package registry ships a
# copy): the script tries to fetch it with a short timeout into the cache, and checks
# advisories when that worked or when an earlier copy is in the cache; otherwise it says on one
# line that advisories were skipped, and why. Any failing check fails the script.
#
# Env: RAFTNET_CACHE (default /var/cache/raftnet); DENY_FETCH_TIMEOUT (seconds, default 60).
set -euo pipefail

VERSION=0.20.2
CACHE="${RAFTNET_CACHE:-/var/cache/raftnet}"
ROOT="$CACHE/cargo-deny/$VERSION"
BIN="$ROOT/bin/cargo-deny"
# deny.toml's advisories.db-path names the same directory.
DB_ROOT="$CACHE/advisory-dbs"

log() { echo "cargo-deny: $*" >&2; }

if [[ ! -x "$BIN" ]]; then
  log "installing cargo-deny $VERSION into $ROOT (once; about 4 minutes on 2 cores)"
  start=$SECONDS
  cargo install --locked --version "$VERSION" cargo-deny --root "$ROOT" >&2
  log "installed in $((SECONDS - start)) s"
fi

if [[ "${1:-}" != check ]]; then
  echo "$BIN"
  exit 0
fi

cd "$(dirname "$0")/.."
export RAFTNET_CACHE="$CACHE"
checks=(bans licenses sources)
flags=()
db_date() {
  local db
  db=$(compgen -G "$DB_ROOT/*/crates" | head -n1) || true
  [[ -n "$db" ]] && git -C "$(dirname "$db")" log -1 --format=%cs 2>/dev/null || echo 'unknown date'
}
# `fetch db` also succeeds, quietly, when GitHub is out of reach and a copy is already here:
# say how recent the copy checked against is.
if fetched=$(timeout "${DENY_FETCH_TIMEOUT:-60}" "$BIN" fetch db 2>&1); then
  log "advisory database in $DB_ROOT, newest advisory commit $(db_date)"
  checks+=(advisories)
  flags+=(--offline)
elif db=$(compgen -G "$DB_ROOT/*/crates" | head -n1) && [[ -n "$db" ]]; then
  db=$(dirname "$db")
  log "advisory database not fetched; checking against the cached copy $db" \
    "of $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo 'unknown date')"
  checks+=(advisories)
  flags+=(--offline)
else
  why=$(grep -m1 -oE "(Could not resolve host|Failed to connect|timed out)[^']*" <<<"$fetched" ||
    echo "fetch failed or timed out")
  echo "cargo-deny: advisories SKIPPED: the RustSec advisory database (a GitHub repository; no" \
    "package registry ships it) could not be fetched ($why) and $DB_ROOT has no copy"
fi
# --offline: the database is already here; fetching it again would fail where GitHub is out of
# reach (crates and the index cache are there after the build).
"$BIN" "${flags[@]}" check --hide-inclusion-graph "${checks[@]}"
