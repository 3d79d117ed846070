#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what prsmfs needs to build and test on Debian bookworm. Idempotent, and silent
# when nothing is missing, so every test run can call it.
#
#   tools/setup.sh                 Debian build/test packages (apt) + the js-ipfs test node
#   tools/setup.sh --print-jsipfs  only the test node: install it if needed, print the path
#                                  of its jsipfs binary on stdout (nothing else on stdout)
#
# The test node is js-ipfs 0.66.1 (see shared/reference/test-node.md), installed with
# `npm ci` from the committed tests/support/node/package-lock.json into
#   ${PRSMFS_NODE_CACHE:-/var/cache/prsmfs/test-node}/<sha256 of package-lock.json>/
# A changed lockfile gets a new directory; an unchanged one is never reinstalled. The
# install goes to a temporary directory that is renamed into place only once `npm ci`
# succeeded and jsipfs runs, so an interrupted install is never taken for a good one.
# Concurrent runs serialise on a lock file in the cache directory.
#
# Node.js 20 and npm come with the machine (Debian's own nodejs is 18, too old for the
# pinned tree); this script checks them and fails clearly instead of installing them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
node_src=$root/tests/support/node

debs=(libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libsqlite3-dev libjansson-dev
	zlib1g-dev libcmocka-dev meson ninja-build pkg-config python3-pytest curl clang
	clang-format rsync git e2fsprogs mount libmicrohttpd-dev libsystemd-dev prometheus
	python3-cryptography python3-numpy python3-torch)
# packaging/build-deb.sh (dpkg-buildpackage, dh) and its test (PyYAML for the manifests)
debs+=(debhelper dpkg-dev build-essential python3-yaml)
# tools/bench/run and its CI test (tests/integration/test_bench_quick.py): nginx as the block
# source, rclone mount and fio as baselines, matplotlib for the charts
debs+=(nginx-light rclone fio python3-matplotlib)

die() {
	echo "setup: $*" >&2
	exit 1
}

install_debs() {
	local missing=() p st
	declare -A have=()
	# one dpkg-query for all; unknown packages only print to stderr
	while read -r p st; do
		[ "$st" = "install ok installed" ] && have[$p]=1
	done < <(dpkg-query -W -f='${Package} ${Status}\n' "${debs[@]}" 2>/dev/null || true)
	for p in "${debs[@]}"; do
		[ -n "${have[$p]:-}" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	echo "setup: installing Debian packages: ${missing[*]}" >&2
	local log
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get failed"
	fi
	rm -f "$log"
}

check_node() {
	local v
	command -v node >/dev/null || die "node (Node.js 20) is not installed; the js-ipfs test node needs it"
	command -v npm >/dev/null || die "npm is not installed; the js-ipfs test node needs it"
	v=$(node --version 2>&1) || die "node --version failed: $v"
	case "$v" in
	v20.*) ;;
	*) die "Node.js 20 is required for the pinned js-ipfs test node, found '$v' ($(command -v node))" ;;
	esac
}

# Sets $jsipfs (and $installed=1 if it had to install the test node first).
install_node() {
	local lock=$node_src/package-lock.json hash cache dest tmp
	[ -f "$lock" ] || die "$lock is missing"
	hash=$(sha256sum "$lock" | cut -d' ' -f1)
	cache=${PRSMFS_NODE_CACHE:-/var/cache/prsmfs/test-node}
	dest=$cache/$hash
	jsipfs=$dest/node_modules/.bin/jsipfs
	if [ ! -x "$jsipfs" ]; then
		mkdir -p "$cache"
		exec 9>"$cache/.lock"
		flock 9
		if [ ! -x "$jsipfs" ]; then # nobody installed it while we waited
			# under the lock no install is running: leftovers are from interrupted runs
			rm -rf "$cache"/.tmp.* "$dest"
			tmp=$(mktemp -d "$cache/.tmp.$hash.XXXXXX")
			chmod 755 "$tmp"
			# shellcheck disable=SC2064 # expand $tmp now
			trap "rm -rf '$tmp'" EXIT
			echo "setup: installing the js-ipfs test node into $dest (npm ci, about a minute)" >&2
			cp "$node_src/package.json" "$lock" "$tmp/"
			if ! (cd "$tmp" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error \
				>npm.log 2>&1); then
				tail -n 30 "$tmp/npm.log" >&2
				die "npm ci of the test node failed (log above)"
			fi
			"$tmp/node_modules/.bin/jsipfs" --version >/dev/null 2>>"$tmp/npm.log" ||
				{ tail -n 30 "$tmp/npm.log" >&2; die "the installed jsipfs does not run"; }
			rm -f "$tmp/npm.log"
			mv -T "$tmp" "$dest" # atomic: $dest appears complete or not at all
			trap - EXIT
			installed=1
		fi
		exec 9>&-
	fi
}

installed=0
jsipfs=
case "${1:-}" in
"")
	install_debs
	check_node
	install_node
	[ "$installed" = 0 ] || echo "jsipfs: $jsipfs"
	;;
--print-jsipfs)
	check_node
	install_node
	echo "$jsipfs"
	;;
-h | --help)
	sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	die "unknown argument '$1' (see --help)"
	;;
esac
