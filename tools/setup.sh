#!/usr/bin/env bash
# Installs everything brigade needs to build and test, and nothing twice:
#   1. Debian packages named in DESIGN.md (only the missing ones);
#   2. the pinned llama.cpp release from the npm registry (tools/deps.lock),
#      each tarball checked against its committed sha512 before unpacking
#      into the git-ignored deps/ folder;
#   3. the integration tests' npm packages, from their lockfile (npm ci).
# Re-running it when everything is present does nothing but check stamps.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=$root/deps

say() { printf 'setup: %s\n' "$*"; }

# --- 1. Debian packages -----------------------------------------------------
pkgs=(build-essential pkg-config libcurl4-openssl-dev
      libjansson-dev libyaml-dev libhiredis-dev redis-server libcmocka-dev
      nodejs npm git clang valgrind)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from outside Debian's packages (as on the CI image).
if command -v node >/dev/null && command -v npm >/dev/null; then
	missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	say "installing Debian packages: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# promtool lints /metrics in tests/integration/metrics.test.mjs; Debian ships
# it only in the prometheus package (~100 MB).  Installed without its
# recommends (node-exporter); on a systemd host the package enables a
# prometheus.service of its own, which brigade does not need.
if ! command -v promtool >/dev/null; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	say "installing Debian package: prometheus (for promtool)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# --- 2. llama.cpp, pinned -----------------------------------------------------
fetch() { # fetch NAME@VERSION SHA512 DEST_DIR
	local spec=$1 want=$2 dest=$3 tgz got
	[ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$want" ] && return 0
	mkdir -p "$deps/npm"
	tgz=$(cd "$deps/npm" && npm pack --silent "$spec" 2>/dev/null | tail -n 1)
	got="sha512-$(openssl dgst -sha512 -binary "$deps/npm/$tgz" | base64 -w0)"
	if [ "$got" != "$want" ]; then
		say "integrity mismatch for $spec: got $got, want $want" >&2
		rm -f "$deps/npm/$tgz"
		exit 1
	fi
	rm -rf "$dest" && mkdir -p "$dest"
	tar xzf "$deps/npm/$tgz" -C "$dest" --strip-components=1
	echo "$want" >"$dest/.stamp"
	say "unpacked $spec (integrity ok)"
}
while read -r spec sum; do
	case $spec in '#'* | '') continue ;; esac
	case $spec in
	node-llama-cpp@*) fetch "$spec" "$sum" "$deps/node-llama-cpp" ;;
	@node-llama-cpp/linux-x64@*) fetch "$spec" "$sum" "$deps/llama-bin" ;;
	esac
done <tools/deps.lock

# The source release travels as a git bundle; we need its headers (and the
# vocab-only GGUF files for benchmarks).
src=$deps/llama.cpp
if [ ! -f "$src/.stamp" ] || [ "$(cat "$src/.stamp")" != "$(cat "$deps/node-llama-cpp/.stamp")" ]; then
	rm -rf "$src"
	git clone -q "$deps/node-llama-cpp/llama/gitRelease.bundle" "$src" 2>/dev/null
	cat "$deps/node-llama-cpp/.stamp" >"$src/.stamp"
	say "llama.cpp source at $(git -C "$src" describe --always)"
fi

# --- 3. test packages -------------------------------------------------------
it=$root/tests/integration
if [ ! -f "$it/node_modules/.stamp" ] || ! cmp -s "$it/package-lock.json" "$it/node_modules/.stamp"; then
	(cd "$it" && npm ci --silent --no-audit --no-fund >/dev/null)
	cp "$it/package-lock.json" "$it/node_modules/.stamp"
	say "integration test packages installed"
fi
