#!/bin/bash
# Sets up and runs every test: installs packages, builds, then runs the
# Catch2 unit tests (ctest), the nginx integration tests (prove) and the
# benchmark's smoke mode; then ctest and prove again against the ASan + UBSan
# build (tests/sanitize.sh, build-asan/) and each libFuzzer target for 15 s
# (tests/fuzz/run.sh, build-fuzz/).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

"$repo/conf/deps.sh" || exit 1
"$repo/conf/build.sh" || exit 1

status=0
(cd "$repo/build" && ctest --output-on-failure -j"$(nproc)") || status=1
(cd "$repo" && prove -I t/lib t/) || status=1
# The benchmark in seconds, so that it cannot rot: checks that it works,
# never its figures.
"$repo/tests/bench/run.sh" --smoke || status=1

started=$SECONDS
"$repo/tests/sanitize.sh" || status=1
echo "tests/run.sh: sanitizer build and run took $((SECONDS - started)) s"
started=$SECONDS
"$repo/tests/fuzz/run.sh" 15 || status=1
echo "tests/run.sh: fuzz build and run took $((SECONDS - started)) s"
exit $status
