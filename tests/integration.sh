#!/bin/sh
# Runs the integration tests (tests/integration/) against the built daemon.
# Called by `make check` with BRACED_BIN and BRACED_SRCDIR set.
srcdir=${BRACED_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
export BRACED_BIN=${BRACED_BIN:-$srcdir/daemon/braced}
cd "$srcdir" || exit 1
exec python3 -m unittest discover -s tests/integration -t tests/integration ${BRACED_TEST_VERBOSE:+-v}
