#!/usr/bin/env bash
# Runs a Redis Cluster of masters on loopback, without replicas or persistence (for development and tests).
#
#   scripts/redis-cluster.sh start [--ports 7001,7002,7003] [--dir .tmp/redis-cluster]
#       Starts a fresh cluster, or leaves a healthy one on those ports alone. Stale nodes.conf files are deleted
#       first, so a node never rejoins a cluster that no longer exists.
#   scripts/redis-cluster.sh restart-node PORT [--dir DIR]
#       Starts one node again with its existing nodes.conf (after it was killed): it rejoins the cluster with
#       the same slots, but empty.
#   scripts/redis-cluster.sh stop [--ports ...]
#   scripts/redis-cluster.sh status [--ports ...]
#
# Point the gateway at it with SKADI_REDIS_CLUSTER=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

command=${1:-}
[ -n "$command" ] || { usage; exit 2; }
case "$command" in -h|--help|help) usage; exit 0 ;; esac
shift
ports="7001,7002,7003"
dir="$(cd "$(dirname "$0")/.." && pwd)/.tmp/redis-cluster"
node_port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ports) ports=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) if [ "$command" = restart-node ] && [ -z "$node_port" ]; then node_port=$1; shift; else echo "redis-cluster: unknown argument $1" >&2; usage >&2; exit 2; fi ;;
  esac
done
IFS=',' read -r -a port_list <<< "$ports"

command -v redis-server >/dev/null 2>&1 || { echo "redis-cluster: redis-server is not installed (scripts/services.sh installs it)" >&2; exit 1; }

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

start_node() { # port: starts redis-server in cluster mode with its own directory
  local port=$1
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --dir "$dir/$port" --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do
    cli "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-cluster: the node on port $port did not start; see $dir/$port/redis.log" >&2
  return 1
}

healthy() { # every node answers and reports a cluster of exactly these nodes in state ok
  for port in "${port_list[@]}"; do
    local info
    info=$(cli "$port" cluster info 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<< "$info" || return 1
    grep -q "^cluster_known_nodes:${#port_list[@]}" <<< "$(tr -d '\r' <<< "$info")" || return 1
  done
}

wait_ok() {
  for _ in $(seq 1 100); do
    healthy && return 0
    sleep 0.1
  done
  echo "redis-cluster: the cluster on ports $ports did not reach state ok" >&2
  return 1
}

stop_all() {
  for port in "${port_list[@]}"; do cli "$port" shutdown nosave >/dev/null 2>&1 || true; done
  for port in "${port_list[@]}"; do
    for _ in $(seq 1 50); do cli "$port" ping >/dev/null 2>&1 || break; sleep 0.1; done
  done
}

case "$command" in
  start)
    if healthy; then echo "redis-cluster: already running on ports $ports"; exit 0; fi
    stop_all
    for port in "${port_list[@]}"; do
      rm -f "$dir/$port/nodes.conf"
      start_node "$port"
    done
    addresses=()
    for port in "${port_list[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
      { echo "redis-cluster: creating the cluster failed; see $dir/create.log" >&2; exit 1; }
    wait_ok
    echo "redis-cluster: ${#port_list[@]} masters up on ports $ports (SKADI_REDIS_CLUSTER=$(IFS=,; echo "${addresses[*]}"))"
    ;;
  restart-node)
    [ -n "$node_port" ] || { echo "redis-cluster: restart-node needs a port" >&2; exit 2; }
    [ -f "$dir/$node_port/nodes.conf" ] || { echo "redis-cluster: no nodes.conf for port $node_port in $dir" >&2; exit 1; }
    start_node "$node_port"
    ;;
  stop)
    stop_all
    echo "redis-cluster: stopped ports $ports"
    ;;
  status)
    if healthy; then echo "redis-cluster: ok on ports $ports"; else echo "redis-cluster: not running (or not ok) on ports $ports"; exit 1; fi
    ;;
  *)
    echo "redis-cluster: unknown command $command" >&2
    usage >&2
    exit 2
    ;;
esac
