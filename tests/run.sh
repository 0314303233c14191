#!/bin/bash
# Sets up and runs every test: installs packages, builds, then runs the
# Catch2 unit tests (ctest), the nginx integration tests (prove) and the
# benchmark's smoke mode.
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
exit $status
