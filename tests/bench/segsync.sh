#!/bin/bash
# segsync figures (measured, never asserted):
#   1. `segsync import` throughput and memory for generated profiles
#      (default 1 M and 10 M; random canonical anonymous ids, each with 0-5
#      of 50 segments and, every other one, two attributes): wall time and
#      records/s per run, the median, peak RSS (VmHWM) and peak anonymous
#      memory (RssAnon, sampled every 50 ms; the rest of the RSS is
#      file-backed: the binary, its libraries and LMDB's map);
#   2. drop-to-visible latency: from rename(2) of a delta batch into the
#      daemon's drop directory to nginx answering with the change.
#
#   tests/bench/segsync.sh [-r RUNS] [PROFILE_COUNTS...]   e.g. tests/bench/segsync.sh -r 3 1000000
#
# RUNS (default 3) imports per count, into a fresh root each time. Needs a
# build (conf/build.sh), perl, curl and GNU time (Debian's `time`); the 10 M
# case needs about 3 GB in /tmp (input, snapshot, sorted runs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
segsync=$repo/build/segsync
module=$repo/build/nginx/objs/ngx_http_segedge_module.so
work=$(mktemp -d /tmp/segsync-bench-XXXXXX)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) $daemon 2>/dev/null || true; rm -rf "$work"' EXIT
daemon=

runs=3
if [ "${1:-}" = -r ]; then runs=$2; shift 2; fi
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000000 10000000)

perl -e 'print qq({"name":"seg$_","priority":$_}\n) for 0..49' > "$work/segments.ndjson"

# One import into a fresh root; prints "SECONDS PEAK_RSS_KB PEAK_ANON_KB".
import_once() {
    rm -rf "$work/db"
    # The wrapper shell writes its pid and becomes segsync (exec), so the
    # sampler reads segsync's own /proc entry.
    /usr/bin/time -f '%e %M' -o "$work/time" \
        bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$work/pid" \
        "$segsync" import --db "$work/db" --segments "$work/segments.ndjson" \
        --profiles "$work/profiles.ndjson" > /dev/null &
    local timer=$! anon=0 pid= key kb sleeper
    # Builtins only (`read -t` on a pipe nobody writes sleeps): the sampler
    # must not compete with the import for CPU.
    exec {sleeper}<> <(:)
    while kill -0 "$timer" 2>/dev/null; do
        [ -n "$pid" ] || read -r pid 2>/dev/null < "$work/pid" || true
        if [ -n "$pid" ]; then
            while read -r key kb _; do
                [ "$key" = RssAnon: ] && [ "$kb" -gt "$anon" ] && anon=$kb
            done 2>/dev/null < "/proc/$pid/status" || true
        fi
        read -rt 0.05 -u "$sleeper" _ || true
    done
    exec {sleeper}<&-
    wait "$timer"
    rm -f "$work/pid"
    read -r seconds rss_kb < "$work/time"
    echo "$seconds $rss_kb $anon"
}

for n in "${counts[@]}"; do
    perl -MDigest::MD5=md5 -MMIME::Base64=encode_base64url -e '
        srand(1);
        my $n = shift;
        for my $i (1 .. $n) {
            my %s; $s{int rand 50}++ for 1 .. int rand 6;
            my $segs = join ",", map { qq("seg$_") } keys %s;
            my $attrs = $i % 2 ? "" : sprintf(q(,"attributes":{"rfm_recency":%d,"lifecycle":"repeat"}), 1 + $i % 5);
            printf qq({"id":"%s","kind":"anonymous","segments":[%s]%s}\n), encode_base64url(md5($i)), $segs, $attrs;
        }' "$n" > "$work/profiles.ndjson"
    # The generator's output on disk first: its writeback would compete
    # with the import's own fdatasync calls.
    sync "$work/profiles.ndjson"
    bytes=$(stat -c %s "$work/profiles.ndjson")
    for run in $(seq 1 "$runs"); do import_once; done | perl -e '
        my ($n, $bytes) = @ARGV;
        my (@s, $rss, $anon);
        while (<STDIN>) {
            my ($seconds, $rss_kb, $anon_kb) = split;
            push @s, $seconds;
            $rss = $rss_kb if $rss_kb > $rss;
            $anon = $anon_kb if $anon_kb > $anon;
            printf "  run %d: %.2f s, %.2f M records/s, peak RSS %.0f MB, peak anonymous %.0f MB\n",
                   scalar @s, $seconds, $n / $seconds / 1e6, $rss_kb / 1024, $anon_kb / 1024;
        }
        my @sorted = sort { $a <=> $b } @s;
        my $median = $sorted[$#sorted / 2];
        printf "import %d profiles (%.0f MB NDJSON), %d runs: median %.2f s, %.2f M records/s; " .
               "peak RSS %.0f MB, peak anonymous %.0f MB\n",
               $n, $bytes / 1e6, scalar @s, $median, $n / $median / 1e6, $rss / 1024, $anon / 1024' "$n" "$bytes"
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
    id=$(perl -MMIME::Base64=encode_base64url -e 'print encode_base64url(pack "N4", 0, 0, 42, shift)' "$i")
    printf '{"op":"enter","id":"%s","kind":"anonymous","segment":"seg7"}\n' "$id" > "$work/.batch"
    start=$(date +%s%N)
    mv "$work/.batch" "$work/drop/$(printf '%04d' "$i").delta.ndjson"
    until [ "$(curl -s -b "segedge_id=$id" http://127.0.0.1:18089/)" = seg7 ]; do :; done
    echo $(( ($(date +%s%N) - start) / 1000 ))
done | sort -n | perl -e 'my @us = <STDIN>; chomp @us;
    printf "drop-to-visible latency over %d batches: median %.1f ms, max %.1f ms\n",
           scalar @us, $us[$#us / 2] / 1000, $us[-1] / 1000'
