#!/usr/bin/env bash
# A fleet on this machine: a TVM RPC tracker and two RPC servers under the key 'loopback', all on 127.0.0.1,
# then `edgenas fleet status` and `edgenas measure --sample` across both servers, and the same command again,
# which finds everything in the store and measures nothing.
# An RPC server runs any code it is sent: bind it to loopback or a trusted network, never a public one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done' EXIT  # each in its own session
setsid $PY -m tvm.exec.rpc_tracker --host 127.0.0.1 --port 9190 --port-end 9191 >/dev/null 2>&1 &
pids+=($!)
sleep 3
for port in 9090 9092; do
  setsid $PY -m tvm.exec.rpc_server --host 127.0.0.1 --port $port --port-end $((port + 1)) \
    --tracker 127.0.0.1:9190 --key loopback >/dev/null 2>&1 &
  pids+=($!)
done
sleep 8
dir=$(mktemp -d)
cat > "$dir/loopback.yaml" <<YAML
name: loopback
description: this machine, measured through the RPC tracker (two servers sharing its cores)
kind: cpu
target: native
target_options: {num-cores: 1}
batch: 1
measure: {via: rpc, tracker: "127.0.0.1:9190", key: loopback, call_timeout_s: 30, cpus: [$(seq -s, 0 $(($(nproc) - 1)))]}
YAML
.venv/bin/edgenas fleet status --tracker 127.0.0.1:9190
.venv/bin/edgenas --profiles "$dir" measure --target loopback --sample "${1:-6}" --db "$dir/db.sqlite"
.venv/bin/edgenas --profiles "$dir" measure --target loopback --sample "${1:-6}" --db "$dir/db.sqlite"
