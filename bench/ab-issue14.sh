#!/usr/bin/env bash
# A/B of the gRPC fast path (bench/FIGURES-issue14.md): interleaved rounds, base build then this build.
#   BASE=<checkout of main before it>/dist/src/cli.js REDIS=redis://127.0.0.1:22379 ROUNDS=3 bench/ab-issue14.sh > out.jsonl
# Each line is one run's JSON with "build" and "bench" added; needs a running redis-server at $REDIS.
set -u
here=$(cd "$(dirname "$0")" && pwd)
NEW=${NEW:-$here/../dist/src/cli.js}
for round in $(seq 1 "${ROUNDS:-3}"); do
  for build in base new; do
    cli=$BASE; [ "$build" = new ] && cli=$NEW
    tag() { sed -n '/^{/p' | tail -1 | sed "s/^{/{\"build\":\"$build\",\"round\":$round,\"bench\":\"$1\",/"; }
    node "$here/push-stream.mjs" --cli "$cli" --api raw --pushes 200000 2>/dev/null | tag raw
    node "$here/push-stream.mjs" --cli "$cli" --api raw --pushes 200000 --redis "$REDIS" 2>/dev/null | tag raw-redis
    node "$here/push-stream.mjs" --cli "$cli" --api stream --pushes 50000 2>/dev/null | tag grpc-js-stream
    PUSHWIRE_CLI=$cli node "$here/run.mjs" ingress --systems pushwire --no-latest > /tmp/ab-ingress.$$ 2>&1
    f=$(grep -o '/[^ ]*ingress-[^ ]*\.json' /tmp/ab-ingress.$$ | tail -1)
    node -e "const r=JSON.parse(require('fs').readFileSync('$f','utf8'));for(const x of r.results??r.runs??[r])console.log(JSON.stringify({build:'$build',round:$round,bench:'ingress-'+x.api,...x,loadavg:require('os').loadavg().map((l)=>l.toFixed(2)).join(' '),date:r.startedAt}))" 2>/dev/null || echo "{\"build\":\"$build\",\"round\":$round,\"bench\":\"ingress\",\"file\":\"$f\"}"
  done
done
