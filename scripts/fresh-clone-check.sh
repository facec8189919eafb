#!/usr/bin/env bash
# The release check: what a newcomer does, on the current commit, away from this checkout.
# Clones HEAD into an empty temporary directory (nothing beside it), then with a minimal environment (PATH
# of the system directories only, an empty HOME and npm prefix, so no global packages, user config or
# credentials; npm's download cache is reused, it is checked by integrity) runs the README's commands:
#   npm ci && npm run demo
#   npm ci && npm test
#   npm run test:node24            (skipped with --no-node24)
# and ends with the `npm test` summary line. Exit status 0 only if every step passed.
# Uncommitted changes are not part of HEAD and are therefore not checked.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
node24=1
for arg in "$@"; do
  case "$arg" in
    --no-node24) node24=0 ;;
    *) echo "usage: scripts/fresh-clone-check.sh [--no-node24]" >&2; exit 2 ;;
  esac
done

commit="$(git -C "$repo" rev-parse HEAD)"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-clone-check: note: uncommitted changes are not checked, only HEAD $commit" >&2
fi
npm_cache="$(npm config get cache)"
work="$(mktemp -d "${TMPDIR:-/tmp}/soci-indexer-fresh-XXXXXX")"
trap 'echo "fresh-clone-check: FAILED; left $work for inspection" >&2' EXIT
mkdir -p "$work/home" "$work/npm-prefix"
git clone --quiet --no-local --no-checkout "$repo" "$work/soci-indexer"
git -C "$work/soci-indexer" checkout --quiet --detach "$commit"
echo "fresh-clone-check: $commit in $work/soci-indexer (Node $(node --version))"

# A newcomer's shell: system tools only, no user config, no global packages, no AWS or Docker credentials.
run() {
  (cd "$work/soci-indexer" && env -i \
    PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work/home" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8 \
    npm_config_cache="$npm_cache" npm_config_prefix="$work/npm-prefix" npm_config_update_notifier=false \
    bash -c "$1")
}

echo "== npm ci && npm run demo"
run 'npm ci --no-audit --no-fund && npm run demo'
echo "== npm ci && npm test"
set +e
run 'npm ci --no-audit --no-fund && npm test' 2>&1 | tee "$work/npm-test.log"
status=${PIPESTATUS[0]}
set -e
summary="$(tail -n 1 "$work/npm-test.log")"
if [ "$node24" = 1 ]; then
  echo "== npm run test:node24"
  set +e
  run 'npm run test:node24' 2>&1 | tee "$work/node24.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  set -e
  echo "Node.js 24: $(tail -n 1 "$work/node24.log")"
fi
trap - EXIT
if [ "$status" = 0 ]; then rm -rf "$work"; else echo "fresh-clone-check: FAILED; logs in $work"; fi
echo "$summary"
exit "$status"
