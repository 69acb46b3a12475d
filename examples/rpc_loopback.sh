#!/usr/bin/env bash
# Measure through TVM's RPC tracker with a tracker and one RPC server on this machine (127.0.0.1 only).
# An RPC server runs any code it is sent: bind it to loopback or a trusted network, never a public one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
setsid $PY -m tvm.exec.rpc_tracker --host 127.0.0.1 --port 9190 --port-end 9191 >/dev/null 2>&1 &
tracker=$!
sleep 2
setsid $PY -m tvm.exec.rpc_server --host 127.0.0.1 --port 9090 --port-end 9091 --tracker 127.0.0.1:9190 --key loopback \
  >/dev/null 2>&1 &
server=$!
trap 'kill -- -$server -$tracker' EXIT  # each runs in its own session; end the whole groups
sleep 4
dir=$(mktemp -d)
cat > "$dir/loopback.yaml" <<YAML
name: loopback
description: this machine, measured through the RPC tracker
kind: cpu
target: native
batch: 1
measure: {via: rpc, tracker: "127.0.0.1:9190", key: loopback}
YAML
.venv/bin/edgenas --profiles "$dir" measure --target loopback \
  --arch '|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|'
