#!/usr/bin/env bash
# Starts one node and one edge on loopback with the embedded defaults (RocksDB + a
# file:// warehouse under ./data) and stops both on Ctrl-C.
set -euo pipefail
bin_dir=${1:?usage: run-local.sh BIN_DIR}
node_listen=${ZOMBI_NODE__LISTEN:-127.0.0.1:8090}
edge_listen=${ZOMBI_EDGE__LISTEN:-127.0.0.1:8080}
data_dir=${ZOMBI_NODE__DATA_DIR:-./data}

"$bin_dir/zombi-node" --listen "$node_listen" --data-dir "$data_dir" &
node_pid=$!
trap 'kill -TERM $node_pid ${edge_pid:-} 2>/dev/null || true; wait || true' EXIT INT TERM
for _ in $(seq 1 100); do
    curl -fsS "http://$node_listen/health" >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { echo "zombi-node exited" >&2; exit 1; }
    sleep 0.1
done
"$bin_dir/zombi-edge" --listen "$edge_listen" --node-url "http://$node_listen" &
edge_pid=$!
echo "zombi: producers POST to http://$edge_listen/tables/{table}; node (catalog, stats) at http://$node_listen"
wait
