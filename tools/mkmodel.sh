#!/usr/bin/env bash
# Prints the path of a cached random-weight model, generating it first when
# it is missing:  tools/mkmodel.sh SHAPE TYPE [SEED]
#   tools/mkmodel.sh qwen2.5-0.5b Q4_K_M   ->  build/models/qwen2.5-0.5b-Q4_K_M.gguf
# The cache is build/models/ (git-ignored; MKMODEL_CACHE overrides it); the
# file name carries the seed when it is not mkmodel's default (42).  Files
# are never regenerated: delete one (or build/models) after changing mkmodel.
# mkmodel's own messages go to stderr, so `$(tools/mkmodel.sh …)` is the path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: tools/mkmodel.sh SHAPE TYPE [SEED]   (build/mkmodel --list shows them)"
shape=${1:?$usage}
type=${2:?$usage}
seed=${3:-42}
dir=${MKMODEL_CACHE:-$root/build/models}
bin=${MKMODEL_BIN:-$root/build/mkmodel}
name=$shape-$type
[ "$seed" = 42 ] || name=$name-s$seed
out=$dir/$name.gguf
if [ ! -s "$out" ]; then
	if [ ! -x "$bin" ]; then
		make -C "$root" --no-print-directory build/mkmodel >&2
	fi
	mkdir -p "$dir"
	"$bin" --shape "$shape" --type "$type" --seed "$seed" --out "$out" >&2
fi
echo "$out"
