#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Style suite: clang-format over every C file, and a grep for banned functions
# (curl's checksrc idea): sprintf strcpy strcat atoi strtok gets, raw strto* outside
# src/base/parse.c.
set -uo pipefail
root=${1:?source root}
cd "$root" || exit 1
rc=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests tools -name '*.[ch]')
if command -v clang-format >/dev/null; then
	for f in $files; do
		[ -f "$f" ] || continue
		if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
			echo "clang-format would change $f"
			rc=1
		fi
	done
else
	echo "clang-format missing" && rc=1
fi
banned='\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|strtok|gets)[[:space:]]*\('
if grep -nE "$banned" $files | grep -v '^tests/fuzz/corpus'; then
	echo "banned function used (see style.md 7.10)"
	rc=1
fi
if grep -nE '\bstrto(l|ul|ll|ull|d|f|ld|imax|umax)[[:space:]]*\(' $files | grep -v '^src/base/parse.c'; then
	echo "raw strto* outside src/base/parse.c"
	rc=1
fi
exit $rc
