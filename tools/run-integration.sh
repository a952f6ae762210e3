#!/usr/bin/env bash
# Runs the integration tests (node's test runner + the official openai SDK)
# against the brigade binary named by BRIGADE_BIN.  Each test file starts
# its own server on a free port with the models in ../shared/models.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BRIGADE_BIN:?set BRIGADE_BIN to the brigade binary}"
export BRIGADE_BIN
export BRIGADE_MODELS_DIR=${BRIGADE_MODELS_DIR:-$(cd ../shared/models && pwd)}
# Two files at a time: each starts a server, and the machine has two cores.
exec node --test --test-concurrency=2 --test-reporter=spec tests/integration/*.test.mjs
