#!/bin/bash
# Builds the proxy's original-destination addon (native/original-dst, Node-API) with the
# node-gyp that npm ships, against the installed node's headers (no download). Linux only;
# needs a C compiler and make.
set -euo pipefail
cd "$(dirname "$0")/../native/original-dst"
NODE_GYP=${NODE_GYP:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js}
NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
args=(rebuild)
[ -f "$NODEDIR/include/node/node_api.h" ] && args+=(--nodedir="$NODEDIR")
node "$NODE_GYP" "${args[@]}" >/tmp/sinew-node-gyp.log 2>&1 || { cat /tmp/sinew-node-gyp.log; exit 1; }
echo "built native/original-dst/build/Release/original_dst.node"
