#!/bin/bash
# Instructions per request of segedge header mode against bare nginx, counted
# by valgrind's callgrind on one worker: repeatable whatever else the machine
# is doing, so optimisation decisions rest on it rather than on CPU time.
#   tests/bench/callgrind.sh [PROFILES, default 1000000] [REQUESTS, default 2000]
# Uses the data set and request pool of tests/bench/run.sh (run it first with
# --profiles PROFILES). Prints instructions per request for each and the
# functions whose cost differs most (exclusive, per request).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
profiles=${1:-1000000}
requests=${2:-2000}
data=$repo/build/bench/data/$profiles
[ -f "$data/requests.tsv" ] || { echo "callgrind: no $data: run tests/bench/run.sh --profiles $profiles first" >&2; exit 1; }
out=$repo/build/bench/callgrind
rm -rf "$out"
mkdir -p "$out"

measure() {  # name, server directives
    local dir=$out/$1 port pid
    mkdir -p "$dir"
    port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1")->sockport')
    cat > "$dir/nginx.conf" <<CONF
load_module $repo/build/nginx/objs/ngx_http_segedge_module.so;
master_process off; daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
http {
    default_type text/html;
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    root $data/html;
    segedge_db $data/db;
    segedge_keys $data/keys;
    server { listen 127.0.0.1:$port; $2 }
}
CONF
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" > "$dir/valgrind.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.3; done
    python3 "$repo/tests/bench/replay.py" "$port" "$data/requests.tsv" 300 1
    callgrind_control -z "$pid" > /dev/null 2>&1
    python3 "$repo/tests/bench/replay.py" "$port" "$data/requests.tsv" "$requests" 2
    callgrind_control -d "$pid" > /dev/null 2>&1
    kill "$pid"
    wait "$pid" || true
    ls -t "$dir"/callgrind.out.* | head -1
}

bare=$(measure bare '')
seg=$(measure segedge-header 'segedge on; add_header X-Seg $segedge_segments;')
python3 "$repo/tests/bench/callgrind_diff.py" "$bare" "$seg" "$requests"
