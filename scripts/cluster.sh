#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, from the installed rabbitmq-server, for trying the
# pipeline on a cluster (npm run test:cluster) without touching a broker that already runs here.
#
#   scripts/cluster.sh up                 start three nodes, join them, enable the consistent-hash plugin
#   scripts/cluster.sh down               stop the three nodes and delete their data directory
#   scripts/cluster.sh status             each node: running or not, AMQP port, cluster members
#   scripts/cluster.sh stop-node <1..3>   stop one node (as if its machine died; the others keep running)
#   scripts/cluster.sh kill-node <1..3>   SIGKILL one node's Erlang VM (a crash: no clean hand-over of leaders)
#   scripts/cluster.sh start-node <1..3>  start a stopped node again; it rejoins the cluster
#   scripts/cluster.sh urls               the AMQP_URL (comma-separated, one address per node) for vhost "/"
#   scripts/cluster.sh ctl <1..3> <args>  rabbitmqctl against one node (e.g. ctl 1 list_queues)
#
# Settings (environment):
#   CLUSTER_DIR        data directory of the nodes (mnesia, logs, cookie, config). Default: .cluster
#                      under the repository.
#   CLUSTER_AMQP_PORT  AMQP port of node 1; nodes 2 and 3 use the next two. Default 5681. Each node's
#                      Erlang distribution port is its AMQP port + 20000 (25681, 25682, 25683).
#   CLUSTER_NODE_PREFIX node names are <prefix>1@localhost ... <prefix>3@localhost. Default rabbit-c.
#
# Isolation from a broker already running here (rabbit@<host> on 5672): every node gets its own name,
# ports, config file (no /etc/rabbitmq/rabbitmq.conf), env file, enabled-plugins file and Erlang cookie
# (under CLUSTER_DIR), so neither this script nor its rabbitmqctl can reach the other broker. No
# management or prometheus plugin is enabled, so no HTTP port is opened. The shared epmd (4369) is used
# as every Erlang node on a machine does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CLUSTER_DIR:-$ROOT/.cluster}"
BASE_PORT="${CLUSTER_AMQP_PORT:-5681}"
PREFIX="${CLUSTER_NODE_PREFIX:-rabbit-c}"
NODES=3

die() { echo "cluster.sh: $*" >&2; exit 2; }

[[ "$BASE_PORT" =~ ^[0-9]+$ ]] && (( BASE_PORT >= 1024 && BASE_PORT + 20000 + NODES <= 65535 )) ||
  die "CLUSTER_AMQP_PORT=$BASE_PORT must be a port from 1024 to $((65535 - 20000 - NODES)); set another CLUSTER_AMQP_PORT"
[[ "$PREFIX" =~ ^[A-Za-z][A-Za-z0-9_-]{0,30}$ ]] || die "CLUSTER_NODE_PREFIX=$PREFIX must be letters, digits, _ or -; set another"
[[ "$PREFIX" != "rabbit" ]] || die "CLUSTER_NODE_PREFIX must not be rabbit (the name of a default broker); set another"

# The real scripts, not the /usr/sbin wrappers (those switch to the rabbitmq user and its cookie).
SBIN=""
for candidate in /usr/lib/rabbitmq/bin "$(dirname "$(readlink -f "$(command -v rabbitmq-server 2>/dev/null || echo /nonexistent)")" 2>/dev/null)"; do
  if [[ -x "$candidate/rabbitmq-server" && -x "$candidate/rabbitmqctl" && "$(head -c 200 "$candidate/rabbitmqctl")" != *"rabbitmq-script-wrapper"* ]]; then
    SBIN="$(cd "$candidate" && pwd)"
    break
  fi
done
[[ -n "$SBIN" ]] || die "rabbitmq-server is not installed (no rabbitmq-server and rabbitmqctl found in /usr/lib/rabbitmq/bin); install it (apt-get install rabbitmq-server)"

node_name() { echo "${PREFIX}$1@localhost"; }
amqp_port() { echo $((BASE_PORT + $1 - 1)); }
dist_port() { echo $((BASE_PORT + $1 - 1 + 20000)); }

# Environment of node i (server and CLI).
node_env() {
  local i="$1" nd="$DIR/node$1"
  export HOME="$DIR/home" # the Erlang cookie lives here
  export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME="$(node_name "$i")"
  export RABBITMQ_USE_LONGNAME=false
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT="$(amqp_port "$i")"
  export RABBITMQ_DIST_PORT
  RABBITMQ_DIST_PORT="$(dist_port "$i")"
  export RABBITMQ_CONFIG_FILE="$nd/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$nd/advanced.config"
  export RABBITMQ_MNESIA_BASE="$nd/mnesia"
  export RABBITMQ_LOG_BASE="$nd/log"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
  export RABBITMQ_PID_FILE="$nd/rabbit.pid"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  unset RABBITMQ_ERLANG_COOKIE ERL_FLAGS
}

ctl() {
  local i="$1"
  shift
  (node_env "$i" && "$SBIN/rabbitmqctl" -n "$(node_name "$i")" "$@")
}

is_running() { ctl "$1" -q ping >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

prepare() {
  mkdir -p "$DIR/home"
  if [[ ! -f "$DIR/home/.erlang.cookie" ]]; then
    # 32 random hex digits; only these three nodes and this script's rabbitmqctl know it.
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$DIR/home/.erlang.cookie")
  fi
  chmod 400 "$DIR/home/.erlang.cookie"
  if false; then :
  fi
  echo "# written by scripts/cluster.sh: nothing from /etc/rabbitmq/rabbitmq-env.conf" >"$DIR/rabbitmq-env.conf"
  echo "[rabbitmq_consistent_hash_exchange]." >"$DIR/enabled_plugins"
  for i in $(seq 1 $NODES); do
    local nd="$DIR/node$i"
    mkdir -p "$nd/mnesia" "$nd/log"
    cat >"$nd/rabbitmq.conf" <<EOF
# node $i of scripts/cluster.sh
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$i")
loopback_users.guest = true
# Keep a node that loses its peers answering for what it can (quorum queues decide by majority).
cluster_partition_handling = pause_minority
EOF
    echo "[]." >"$nd/advanced.config"
  done
}

start_node() {
  local i="$1"
  if is_running "$i"; then echo "node $i ($(node_name "$i")) already runs"; return 0; fi
  for port in "$(amqp_port "$i")" "$(dist_port "$i")"; do
    port_busy "$port" && die "port $port (node $i) is in use by another process; set CLUSTER_AMQP_PORT to a free range"
  done
  (
    node_env "$i"
    rm -f "$RABBITMQ_PID_FILE"
    cd "$DIR/node$i" # an Erlang crash dump lands here, not in the caller's directory
    nohup "$SBIN/rabbitmq-server" >"$DIR/node$i/log/console.log" 2>&1 </dev/null &
  )
  if ! ctl "$i" -q wait --timeout 120 "$DIR/node$i/rabbit.pid" >/dev/null 2>&1; then
    tail -n 30 "$DIR/node$i/log/console.log" >&2 || true
    die "node $i ($(node_name "$i")) did not start; see $DIR/node$i/log"
  fi
  echo "node $i ($(node_name "$i")) runs: amqp://127.0.0.1:$(amqp_port "$i")"
}

stop_node() {
  local i="$1"
  if ! is_running "$i"; then echo "node $i ($(node_name "$i")) is not running"; return 0; fi
  ctl "$i" -q stop "$DIR/node$i/rabbit.pid" >/dev/null
  echo "node $i ($(node_name "$i")) stopped"
}

kill_node() {
  local i="$1" pidfile="$DIR/node$1/rabbit.pid"
  [[ -s "$pidfile" ]] || die "node $i has no pid file ($pidfile); is it running?"
  local pid
  pid="$(cat "$pidfile")"
  # Only the VM started for this node's name and data directory: never another broker.
  if ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_MNESIA_BASE=$DIR/node$i/mnesia"; then
    die "pid $pid is not node $i ($(node_name "$i")); not killing it"
  fi
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$pidfile"
  echo "node $i ($(node_name "$i")) killed"
}

cmd_up() {
  prepare
  for i in $(seq 1 $NODES); do start_node "$i"; done
  local first
  first="$(node_name 1)"
  for i in $(seq 2 $NODES); do
    if ctl "$i" -q cluster_status --formatter json 2>/dev/null | grep -q "\"$first\""; then continue; fi
    local out="$DIR/node$i/log/join.log"
    { ctl "$i" -q stop_app && ctl "$i" -q reset && ctl "$i" -q join_cluster "$first" && ctl "$i" -q start_app; } >"$out" 2>&1 ||
      { cat "$out" >&2; die "node $i could not join $first; see $out"; }
    echo "node $i joined $first"
  done
  ctl 1 -q await_online_nodes $NODES --timeout 120 >/dev/null 2>&1 || ctl 1 -q await_online_nodes $NODES >/dev/null
  # Quorum queues take every cluster member as a replica by default (initial group size = cluster size);
  # nothing else to configure. The plugin is on through the shared enabled-plugins file.
  echo "cluster of $NODES nodes up; AMQP_URL=$(cmd_urls)"
}

cmd_down() {
  for i in $(seq 1 $NODES); do
    if [[ -d "$DIR/node$i" ]]; then stop_node "$i" || true; fi
  done
  # Only ever delete a directory this script made.
  if [[ -f "$DIR/rabbitmq-env.conf" ]] && grep -q "written by scripts/cluster.sh" "$DIR/rabbitmq-env.conf"; then
    rm -rf "$DIR"
    echo "removed $DIR"
  fi
}

cmd_status() {
  local any=1
  for i in $(seq 1 $NODES); do
    if is_running "$i"; then
      echo "node $i $(node_name "$i") running amqp://127.0.0.1:$(amqp_port "$i")"
      any=0
    else
      echo "node $i $(node_name "$i") stopped (port $(amqp_port "$i"))"
    fi
  done
  for i in $(seq 1 $NODES); do
    if is_running "$i"; then
      echo "cluster members known to node $i:"
      ctl "$i" -q cluster_status --formatter json | tr ',' '\n' | grep -o "${PREFIX}[0-9]*@localhost" | sort -u | sed 's/^/  /'
      break
    fi
  done
  return $any
}

cmd_urls() {
  local vhost="${1:-}" out=""
  for i in $(seq 1 $NODES); do
    out+="${out:+,}amqp://guest:guest@127.0.0.1:$(amqp_port "$i")/${vhost}"
  done
  echo "$out"
}

node_arg() {
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "expected a node number from 1 to $NODES, got '${1:-}'"
  echo "$1"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop-node) stop_node "$(node_arg "${2:-}")" ;;
  kill-node) kill_node "$(node_arg "${2:-}")" ;;
  start-node) prepare >/dev/null; start_node "$(node_arg "${2:-}")" ;;
  urls) cmd_urls "${2:-}" ;;
  ctl) i="$(node_arg "${2:-}")"; shift 2; ctl "$i" "$@" ;;
  *) echo "usage: scripts/cluster.sh up|down|status|stop-node N|kill-node N|start-node N|urls [vhost]|ctl N <rabbitmqctl args>" >&2; exit 2 ;;
esac
