#!/bin/bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each for
# a fixed time, starting from its committed seeds (tests/fuzz/corpus/NAME/)
# plus what earlier runs found (build-fuzz/corpus/NAME/, where new inputs
# go). Fails when a target crashes, leaks, times out or breaks an invariant;
# the input is saved as build-fuzz/crashes/NAME-crash-<sha1> (README
# "Fuzzing" says how to reproduce it).
#
#   tests/fuzz/run.sh [SECONDS [NAME...]]    default: 15 s each, every target;
#                                            0 s: build only
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$repo/build-fuzz
seconds=${1:-15}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for source in "$repo"/tests/fuzz/fuzz_*.cpp; do
        name=$(basename "$source" .cpp)
        targets+=("${name#fuzz_}")
    done
fi

cmake -S "$repo" -B "$build" -DSEGEDGE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" || exit 1
[ "$seconds" -gt 0 ] || exit 0

status=0
for name in "${targets[@]}"; do
    mkdir -p "$build/corpus/$name" "$build/crashes"
    dict=()
    [ -f "$repo/tests/fuzz/$name.dict" ] && dict=(-dict="$repo/tests/fuzz/$name.dict")
    started=$SECONDS
    log=$build/fuzz-$name.log
    "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$name-" "${dict[@]}" \
        "$build/corpus/$name" "$repo/tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ $rc -eq 0 ]; then
        echo "fuzz $name: ok, ${runs:-?} runs in $((SECONDS - started)) s"
    else
        echo "fuzz $name: FAILED (exit $rc) after $((SECONDS - started)) s; log $log:"
        grep -v '^#[0-9]' "$log" | tail -60
        status=1
    fi
done
exit $status
