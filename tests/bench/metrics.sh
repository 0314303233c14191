#!/bin/bash
# Cost of the metrics zone per request: two nginx instances with the same
# snapshot and locations, one with segedge_metrics_zone, one without (the
# zone is http-wide, so it cannot differ per location). wrk measures bare
# nginx, segedge without metrics and segedge with metrics (request, three
# segment matches: four atomic adds), interleaved in shuffled rounds.
#   tests/bench/metrics.sh [SECONDS per run, default 2] [ROUNDS, default 9]
# Needs wrk and a build (conf/build.sh). Not part of tests/run.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-2}
rounds=${2:-9}
dir=$(mktemp -d /tmp/segedge-bench-XXXXXX)
plain_port=$((20000 + RANDOM % 20000))
metrics_port=$((plain_port + 1))
trap 'for p in "$dir"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$dir"' EXIT

visitor_id() { printf '%-16.16s' "$1" | tr ' ' '\0' | base64 | tr '+/' '-_' | tr -d '=\n'; }
anon=$(visitor_id bench-anon)
printf '%s\n' '{"name":"vip","priority":100}' '{"name":"cart","priority":50}' '{"name":"news","priority":10}' \
    > "$dir/segments.ndjson"
echo "{\"id\":\"$anon\",\"kind\":\"anonymous\",\"segments\":[\"vip\",\"cart\",\"news\"]}" > "$dir/profiles.ndjson"
"$repo/build/segsync" import --db "$dir/db" --segments "$dir/segments.ndjson" \
    --profiles "$dir/profiles.ndjson" > /dev/null

start() {  # name, port, extra http directive
    cat > "$dir/$1.conf" <<CONF
load_module $repo/build/nginx/objs/ngx_http_segedge_module.so;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
pid $dir/$1.pid;
error_log $dir/$1.log error;
events { worker_connections 256; }
http {
    access_log off;
    segedge_db $dir/db;
    $3
    server {
        listen 127.0.0.1:$2;
        location /bare { add_header X-Seg vip,cart,news; return 200 "ok\n"; }
        location /seg { segedge on; add_header X-Seg \$segedge_segments; return 200 "ok\n"; }
    }
}
CONF
    /usr/sbin/nginx -p "$dir/" -c "$dir/$1.conf"
}
start plain "$plain_port" ""
start metrics "$metrics_port" "segedge_metrics_zone bench 1m; server { listen 127.0.0.1:$((metrics_port + 1)); location / { segedge_status; } }"
sleep 0.5
for port in "$plain_port" "$metrics_port"; do
    curl -s -o /dev/null -D - -b "segedge_id=$anon" "http://127.0.0.1:$port/seg" |
        grep -q '^X-Seg: vip,cart,news' || { echo "segedge did not resolve on $port" >&2; exit 1; }
done

worker() { pgrep -P "$(cat "$dir/$1.pid")"; }
declare -A workers=([plain]=$(worker plain) [metrics]=$(worker metrics))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() {  # round, case, instance, port, path
    local pid=${workers[$3]} before requests
    before=$(cpu_ticks "$pid")
    requests=$(wrk -t1 -c16 -d"${seconds}s" -H "Cookie: segedge_id=$anon" "http://127.0.0.1:$4$5" |
               awk '/requests in/ { print $1 }')
    echo "$1 $2 $requests $(( $(cpu_ticks "$pid") - before ))"
}

for ((i = 0; i < rounds; i++)); do
    for c in $(printf '%s\n' bare segedge metrics | shuf); do
        case $c in
            bare)    run "$i" $c plain "$plain_port" /bare ;;
            segedge) run "$i" $c plain "$plain_port" /seg ;;
            metrics) run "$i" $c metrics "$metrics_port" /seg ;;
        esac
    done
done | awk -v hz="$(getconf CLK_TCK)" -v cases="bare segedge metrics" -f "$repo/tests/bench/median_ratio.awk"

matches=$(curl -s "http://127.0.0.1:$((metrics_port + 1))/" | awk '$1 == "segedge_segment_matches_total{segment=\"vip\"}" { print $2 }')
echo "vip matches counted by the metrics instance: $matches"
grep -E '\[(alert|emerg|crit)\]' "$dir"/*.log && exit 1 || true
