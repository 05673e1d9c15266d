#!/bin/bash
# (From the reference material's Kubernetes setup-from-debian.sh, unchanged.)
# Build a real kube-apiserver (+ kube-controller-manager) v1.20.2 from Debian bookworm's own
# "kubernetes" source package with Debian's golang-go 1.19; etcd comes from Debian's etcd-server 3.4.
# Needs only Debian's package repositories. Usage: setup-from-debian.sh DEST   (binaries land in DEST/bin)
set -euo pipefail
DEST=${1:-${KUBE_TEST_HOME:-/var/tmp/kube-test}}
mkdir -p "$DEST/bin" "$DEST/src"
T0=$(date +%s)
# 1. packages (+ a deb-src entry for bookworm main, needed by `apt-get source`)
if ! grep -rqs "deb-src" /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    > /etc/apt/sources.list.d/debian-src.sources
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  golang-go etcd-server etcd-client dpkg-dev rsync jq openssl curl bc golang-github-modern-go-reflect2-dev >/dev/null
# 2. the source: upstream v1.20.2 tree with vendor/ (34 MB .orig.tar.gz)
cd "$DEST/src"
[ -d kubernetes-1.20.5+really1.20.2 ] || apt-get source -qq kubernetes=1.20.5+really1.20.2-1.1+deb12u1 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
SRC="$DEST/src/kubernetes-1.20.5+really1.20.2"
# 3. Go >= 1.18 fix: vendored modern-go/reflect2 v1.0.1 crashes (SIGSEGV in mapiterinit, hit by the mutating
#    webhook dispatcher's JSON encoding). Swap in Debian's reflect2 1.0.2 (API compatible).
R2="$SRC/vendor/github.com/modern-go/reflect2"
if [ ! -f "$R2/go_above_118.go" ]; then
  rm -f "$R2"/*.go "$R2"/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R2/"
fi
T1=$(date +%s)
# 4. generated OpenAPI definitions are not in the tarball: generate them the upstream way
( cd "$SRC" && make gen_openapi >/dev/null )
T2=$(date +%s)
# 5. build, in GOPATH mode as upstream 1.20's hack/ scripts do (GO111MODULE=off), offline
export GOPATH="$DEST/gopath" GOCACHE="${GOCACHE:-$DEST/gocache}" GO111MODULE=off GOPROXY=off CGO_ENABLED=0 GOFLAGS=
mkdir -p "$GOPATH/src/k8s.io"; ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
LD="-s -w"
for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=v1.20.2 -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=archive -X $p.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56"
done
for cmd in ${CMDS:-kube-apiserver kube-controller-manager}; do
  go build -ldflags "$LD" -o "$DEST/bin/$cmd" ./cmd/$cmd
  echo "built $cmd at +$(( $(date +%s) - T0 ))s"
done
T3=$(date +%s)
echo "apt+source+patch: $((T1-T0))s, gen_openapi: $((T2-T1))s, go build: $((T3-T2))s, total: $((T3-T0))s"
"$DEST/bin/kube-apiserver" --version
