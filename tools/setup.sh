#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what prsmfs needs to build and test, idempotently and quietly when nothing is
# missing: Debian packages (apt), and the js-ipfs test node (npm, from the committed
# lockfile, cached per lockfile hash in $PRSMFS_NODE_CACHE, default
# /var/cache/prsmfs/test-node, so a second run installs nothing).
#   tools/setup.sh                 install everything
#   tools/setup.sh --print-jsipfs  install if needed, print the jsipfs path
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1

packages=(libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libsqlite3-dev libjansson-dev
	zlib1g-dev libcmocka-dev meson ninja-build pkg-config python3 python3-pytest curl clang
	clang-format nodejs npm)

missing=()
for p in "${packages[@]}"; do
	if [ "$p" = nodejs ] || [ "$p" = npm ]; then
		command -v "${p/nodejs/node}" >/dev/null && continue
	fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q "${missing[@]}" >/dev/null
fi

node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
if [ -z "$node_major" ] || [ "$node_major" -lt 18 ]; then
	echo "setup: Node.js >= 18 is needed for the js-ipfs test node (found '$(node --version 2>&1)')" >&2
	exit 1
fi

lock=tests/support/node/package-lock.json
hash=$(sha256sum "$lock" | cut -c1-16)
cache=${PRSMFS_NODE_CACHE:-/var/cache/prsmfs/test-node}
dest=$cache/$hash
if [ ! -x "$dest/node_modules/.bin/jsipfs" ]; then
	echo "setup: installing the js-ipfs test node into $dest (takes a few minutes once)" >&2
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.install.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp tests/support/node/package.json "$lock" "$tmp/"
	# npm install (not npm ci) with the committed lockfile: the lock pins every package,
	# but ci's strict check trips over an optional dependency of electron-eval that points
	# at a GitHub tarball, which cannot be fetched here and is skipped either way.
	(cd "$tmp" && npm install --no-audit --no-fund --no-save --before=2024-12-20 \
		--loglevel=error >"$tmp/npm.log" 2>&1) || {
		tail -20 "$tmp/npm.log" >&2
		echo "setup: npm install of the test node failed" >&2
		exit 1
	}
	rm -f "$tmp/npm.log"
	# atomic: an interrupted install is never mistaken for a good one
	rm -rf "$dest"
	mv "$tmp" "$dest"
	trap - EXIT
fi
if [ "${1:-}" = --print-jsipfs ]; then
	echo "$dest/node_modules/.bin/jsipfs"
fi
