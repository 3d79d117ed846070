#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the Debian package prsmfs from this source tree and leaves the .deb in OUTDIR.
#
#   packaging/build-deb.sh OUTDIR
#
# dpkg-buildpackage wants debian/ at the top of the source tree, which this repository keeps
# in packaging/debian/: the script copies the tree (the files git knows, committed or not,
# minus deleted ones; every file but build directories when it is not a git checkout) into a
# temporary directory, puts packaging/debian there as debian/ with a changelog for the
# version in meson.build, and runs `dpkg-buildpackage -us -uc -b`. Needs the build
# dependencies of packaging/debian/control (tools/setup.sh installs them).
# DEB_BUILD_OPTIONS is passed through (nocheck: no tests at build time, parallel=N).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

version=$(grep -m1 "^project(" "$root/meson.build" | grep -o "[(, ]version: '[0-9][^']*'" |
	sed "s/.*'\(.*\)'/\1/")
[ -n "$version" ] || { echo "build-deb: no version in $root/meson.build" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prsmfs-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/prsmfs-$version
mkdir "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$root" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$root/$f" ] && printf '%s\0' "$f"; done |
		rsync -a --from0 --files-from=- "$root/" "$src/"
else
	rsync -a --exclude='/build*/' --exclude='/debian/' "$root/" "$src/"
fi
rm -rf "$src/debian"
cp -a "$root/packaging/debian" "$src/debian"
cat >"$src/debian/changelog" <<CHANGES
prsmfs ($version) unstable; urgency=medium

  * Built from the source tree by packaging/build-deb.sh.

 -- prsmfs developers <prsmfs@localhost>  $(date -R)
CHANGES

(cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 || {
	tail -n 60 "$tmp/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log above)" >&2
	exit 1
}
shopt -s nullglob
debs=("$tmp"/*.deb)
[ ${#debs[@]} -gt 0 ] || { echo "build-deb: no .deb produced" >&2; exit 1; }
for d in "${debs[@]}"; do
	case $d in *-dbgsym_*) ;; *) cp "$d" "$out/"; echo "$out/$(basename "$d")" ;; esac
done
