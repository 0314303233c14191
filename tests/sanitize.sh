#!/bin/bash
# The sanitizer run (README "Sanitizers"): builds segcore, segsync, the unit
# tests and the nginx module with ASan + UBSan into build-asan/, then runs
# the Catch2 tests and the t/ suite against that build. Fails on any test
# failure and on any sanitizer report, wherever it was written: the t/
# harness checks its own (TESTDIR/sanitizer.PID); the unit tests' (and the
# segsync processes they start) go to build-asan/sanitizer/.
#
#   tests/sanitize.sh [prove arguments]    default: the whole t/ suite
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build-asan

cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGEDGE_SANITIZE=ON >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

status=0
reports=$build/sanitizer
rm -rf "$reports"
mkdir -p "$reports"
started=$SECONDS
(cd "$build" && ASAN_OPTIONS="log_path=$reports/ctest" UBSAN_OPTIONS="log_path=$reports/ctest:print_stacktrace=1" \
    ctest --output-on-failure -j"$(nproc)") || status=1
if compgen -G "$reports/*" >/dev/null; then
    echo "sanitizer reports from the unit tests:"
    head -n 60 "$reports"/*
    status=1
fi
echo "sanitize: ctest took $((SECONDS - started)) s"

started=$SECONDS
(cd "$repo" && SEGEDGE_BUILD=build-asan prove -I t/lib "${@:-t/}") || status=1
echo "sanitize: prove took $((SECONDS - started)) s"
exit $status
