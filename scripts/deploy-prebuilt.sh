#!/usr/bin/env bash
# Prepares deploy/.prebuilt/ for `podman build --build-arg APP_FROM=prebuilt -f deploy/Dockerfile .`
# (docs/deploy.md): the compiled JavaScript (npm run build → dist/) and the production dependencies
# alone (npm ci --omit=dev in a staging directory, so that the working tree's dev dependencies stay).
# Reuses the staged node_modules while package-lock.json is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
out=deploy/.prebuilt
mkdir -p "$out"
npm run --silent build
rm -rf "$out/dist"
cp -a dist "$out/dist"
lock_sum=$(sha256sum package-lock.json | cut -c1-16)
if [ -d "$out/node_modules" ] && [ "$(cat "$out/lock.sum" 2>/dev/null)" = "$lock_sum" ]; then
  echo "[prebuilt] production node_modules unchanged (kept)" >&2
else
  stage=$(mktemp -d "$out/stage.XXXXXX")
  cp package.json package-lock.json "$stage/"
  [ -f .npmrc ] && cp .npmrc "$stage/"
  echo "[prebuilt] npm ci --omit=dev (production dependencies only)" >&2
  (cd "$stage" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$out/node_modules"
  mv "$stage/node_modules" "$out/node_modules"
  rm -rf "$stage"
  echo "$lock_sum" > "$out/lock.sum"
fi
