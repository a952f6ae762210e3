#!/usr/bin/env bash
# Builds the peer, llama.cpp's own llama-server, from the same llama.cpp
# release that tools/setup.sh unpacks (deps/llama.cpp), into the git-ignored
# deps/llama-server-build.  About 9 minutes on 2 cores the first time; a
# second run only checks that the binary is there and matches the source.
# Native CPU flags (GGML_NATIVE): the strongest peer this machine can run.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=deps/llama.cpp
out=deps/llama-server-build
[ -f "$src/CMakeLists.txt" ] || bash tools/setup.sh
want=$(git -C "$src" rev-parse HEAD)
if [ -x "$out/bin/llama-server" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi
command -v cmake >/dev/null || {
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y -qq cmake >/dev/null
}
echo "build-peer: building llama-server from llama.cpp $(git -C "$src" rev-parse --short HEAD) (takes minutes)" >&2
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
	-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DBUILD_SHARED_LIBS=OFF >"$out.cmake.log" 2>&1 ||
	{ tail -30 "$out.cmake.log" >&2; exit 1; }
cmake --build "$out" --target llama-server -j "$(nproc)" >"$out.build.log" 2>&1 ||
	{ tail -30 "$out.build.log" >&2; exit 1; }
echo "$want" >"$out/.stamp"
