#!/usr/bin/env bash
# A/B of unary PushData calls carrying a deadline (grpc-timeout) on the gRPC fast path vs grpc-js
# (bench/FIGURES-issue14.md, "gRPC fast path"): interleaved rounds of
#   fast     this build, every call with grpc-timeout
#   grpcjs   the same with --grpc-fast-path false (grpc-js runs every call)
#   nodl     this build, no grpc-timeout (what a deadline costs the fast path)
#   ROUNDS=5 DURATION=4 [REDIS=1] bench/ab-deadline.sh > out.txt
# Each run is bench/profile.mjs --no-prof --api grpc --client raw; one line per run: arm, round, load average, and
# profile.mjs's summary (calls/s, node CPU µs per call, the node's timers and heap after the run).
set -u
here=$(cd "$(dirname "$0")" && pwd)
redis=--no-redis
[ -n "${REDIS:-}" ] && redis=
common=(--no-prof --api grpc --client raw --pushers 1 --channels 2 --inflight 256 --duration "${DURATION:-4}" $redis)
for round in $(seq 1 "${ROUNDS:-5}"); do
  for arm in fast grpcjs nodl; do
    case $arm in
      fast) extra=(--deadline 30S) ;;
      grpcjs) extra=(--deadline 30S "--serve-args=--grpc-fast-path false") ;;
      nodl) extra=() ;;
    esac
    load=$(cut -d' ' -f1 /proc/loadavg)
    out=$(node "$here/profile.mjs" "${common[@]}" "${extra[@]}" 2>&1 | grep -E 'pushes \(|server CPU|after the run|pushes_total' | tr '\n' ' ')
    echo "$arm round=$round load=$load $out"
  done
done
