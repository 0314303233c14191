#!/bin/bash
# Installs the Debian 12 packages segedge needs to build, demo and test.
# Idempotent: runs apt-get only when something is missing.
set -euo pipefail

packages=(
    # build: nginx's module build needs the same libraries nginx was built with
    g++ cmake make pkg-config nginx nginx-dev libpcre2-dev libssl-dev zlib1g-dev
    liblmdb-dev lmdb-utils nlohmann-json3-dev catch2
    # rule segments: RE2 matches in linear time, so a rule's regex cannot stall a worker
    libre2-dev
    # segsync run: HTTP(S) sources
    libcurl4-openssl-dev
    # tests (python3 runs the README's signed-cookie recipe; openssl checks feed
    # signatures; chromium drives the demo in a real browser, t/12-blocks-browser.t)
    perl curl python3 openssl chromium chromium-driver
    # benchmarks (tests/bench/): load generator, segcore micro-benchmarks
    # (Google Benchmark), the chart; procps for pgrep (finding nginx workers)
    wrk libbenchmark-dev gnuplot-nox procps
    # fuzzing (tests/fuzz/): libFuzzer comes with clang's runtime libraries
    clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "segedge: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
