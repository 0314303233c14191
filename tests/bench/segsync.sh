#!/bin/bash
# segsync figures (measured, never asserted):
#   1. `segsync import` throughput and peak RSS for generated profiles
#      (default 1 M and 10 M; each has 0-5 of 50 segments and, every other
#      one, two attributes);
#   2. drop-to-visible latency: from rename(2) of a delta batch into the
#      daemon's drop directory to nginx answering with the change.
#
#   tests/bench/segsync.sh [PROFILE_COUNTS...]     e.g. tests/bench/segsync.sh 1000000
#
# Needs a build (conf/build.sh), perl, curl and GNU time (Debian's `time`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
segsync=$repo/build/segsync
module=$repo/build/nginx/objs/ngx_http_segedge_module.so
work=$(mktemp -d /tmp/segsync-bench-XXXXXX)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) $daemon 2>/dev/null || true; rm -rf "$work"' EXIT
daemon=

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000000 10000000)

perl -e 'print qq({"name":"seg$_","priority":$_}\n) for 0..49' > "$work/segments.ndjson"

for n in "${counts[@]}"; do
    perl -e '
        srand(1);
        my $n = shift;
        for my $i (1 .. $n) {
            my %s; $s{int rand 50}++ for 1 .. int rand 6;
            my $segs = join ",", map { qq("seg$_") } keys %s;
            my $attrs = $i % 2 ? "" : sprintf(q(,"attributes":{"rfm_recency":%d,"lifecycle":"repeat"}), 1 + $i % 5);
            printf qq({"id":"v-%010d","kind":"anonymous","segments":[%s]%s}\n), $i, $segs, $attrs;
        }' "$n" > "$work/profiles.ndjson"
    rm -rf "$work/db"
    /usr/bin/time -f '%e %M' -o "$work/time" \
        "$segsync" import --db "$work/db" --segments "$work/segments.ndjson" \
                   --profiles "$work/profiles.ndjson" > /dev/null
    read -r seconds rss_kb < "$work/time"
    bytes=$(stat -c %s "$work/profiles.ndjson")
    perl -e 'printf "import %d profiles (%.0f MB NDJSON): %.2f s, %.2f M records/s, peak RSS %.0f MB\n",
                    $ARGV[0], $ARGV[1] / 1e6, $ARGV[2], $ARGV[0] / $ARGV[2] / 1e6, $ARGV[3] / 1024' \
        "$n" "$bytes" "$seconds" "$rss_kb"
    rm -f "$work/profiles.ndjson"
done

# Latency: the daemon watching a drop directory (inotify), nginx checking
# DB/current every 1 s (a delta does not change current: no check needed).
mkdir -p "$work/drop"
cat > "$work/segsync.json" <<JSON
{"db": "$work/db", "sources": [{"name": "drop", "type": "directory", "path": "$work/drop"}]}
JSON
cat > "$work/nginx.conf" <<CONF
load_module $module;
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
    access_log off;
    segedge_db $work/db;
    server {
        listen 127.0.0.1:18089;
        location / { segedge on; return 200 "\$segedge_segments\n"; }
    }
}
CONF
[ "$(id -u)" = 0 ] && sed -i "1a user root root;" "$work/nginx.conf"
/usr/sbin/nginx -p "$work/" -c "$work/nginx.conf"
"$segsync" run --config "$work/segsync.json" 2> "$work/segsync.log" &
daemon=$!
sleep 1
for i in $(seq 1 20); do
    printf '{"op":"enter","id":"latency-%d","kind":"anonymous","segment":"seg7"}\n' "$i" > "$work/.batch"
    start=$(date +%s%N)
    mv "$work/.batch" "$work/drop/$(printf '%04d' "$i").delta.ndjson"
    until [ "$(curl -s -b "segedge_id=latency-$i" http://127.0.0.1:18089/)" = seg7 ]; do :; done
    echo $(( ($(date +%s%N) - start) / 1000 ))
done | sort -n | perl -e 'my @us = <STDIN>; chomp @us;
    printf "drop-to-visible latency over %d batches: median %.1f ms, max %.1f ms\n",
           scalar @us, $us[$#us / 2] / 1000, $us[-1] / 1000'
