#!/bin/bash
# Builds the test API server (and kubectl, and the controller manager) once and keeps them: a
# run with every binary in place does nothing. Usage: setup.sh [DEST]
# (default $KUBE_TEST_HOME, else /var/tmp/kube-test); CMDS picks what to build.
set -euo pipefail
DEST=${1:-${KUBE_TEST_HOME:-/var/tmp/kube-test}}
HERE=$(cd "$(dirname "$0")" && pwd)
CMDS=${CMDS:-kube-apiserver kubectl kube-controller-manager}
missing() {
  local out=()
  for c in $CMDS; do [ -x "$DEST/bin/$c" ] || out+=("$c"); done
  command -v etcd >/dev/null && command -v etcdctl >/dev/null || out+=(etcd)
  echo "${out[*]:-}"
}
if [ -z "$(missing)" ]; then
  echo "kube-test: $CMDS cached in $DEST/bin"
  exit 0
fi
mkdir -p "$DEST"
# One build at a time: two runs on one machine share the cache.
exec 9>"$DEST/.build.lock"
flock 9
todo=$(missing)
if [ -z "$todo" ]; then echo "kube-test: built meanwhile by another run"; exit 0; fi
todo=${todo/etcd/}
echo "kube-test: building ${todo:-etcd packages} into $DEST (several minutes the first time)"
# (etcd comes with the packages setup-from-debian.sh installs; with no command left to build it
# still installs them.)
CMDS="${todo:-}" bash "$HERE/setup-from-debian.sh" "$DEST"
