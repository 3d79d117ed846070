#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# README command 2: installs what is missing, builds prsmfs with ASan+UBSan and warnings as
# errors, and runs every test: unit (cmocka), fuzz-corpus replay, style, and integration
# (real mounts against real js-ipfs nodes). Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

build=${PRSMFS_BUILD:-build-asan}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dwerror=true -Db_sanitize=address,undefined >"$build.setup.log" 2>&1 ||
		{ cat "$build.setup.log"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build"; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

rm -f "$build/meson-logs/testlog.json" "$build/integration.xml"
meson test -C "$build" --suite unit --suite fuzz-regression --suite style \
	--print-errorlogs --num-processes 2
unit_rc=$?

# Integration: real mounts (root + /dev/fuse) and real js-ipfs nodes. Their directories (node
# repos with GiBs of blocks, staging files) go to one basetemp that pytest empties at the start
# of each run and that is removed after a run that passed; pytest's default keeps three runs
# under /tmp (about 8 GiB each).
basetemp="$PWD/$build/pytest-tmp"
PRSMFS_BIN="$PWD/$build/src/daemon/prsmfs" PRSMFS_SOURCE_ROOT="$PWD" \
	PRSMFS_BUILD_ROOT="$PWD/$build" \
	ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	/usr/bin/python3 -m pytest -v -p no:cacheprovider --junitxml="$build/integration.xml" \
	--basetemp="$basetemp" tests/integration ${PRSMFS_PYTEST_ARGS:-}  # word-split on purpose: extra pytest args
int_rc=$?
[ "$int_rc" -ne 0 ] || rm -rf "$basetemp"

echo
/usr/bin/python3 tools/test-summary.py "$build/meson-logs/testlog.json" "$build/integration.xml"
[ "$unit_rc" -eq 0 ] && [ "$int_rc" -eq 0 ]
