#!/bin/bash
# (From the reference material's Kubernetes make-pki.sh; the directory is now required.)
# Self-signed PKI for a loopback-only kube-apiserver: CA, serving cert, admin client cert,
# service-account key pair, static token file, webhook serving cert.
set -euo pipefail
D=${1:?usage: make-pki.sh DIR}
mkdir -p "$D"; cd "$D"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj "/CN=test-ca" 2>/dev/null
sign() { # name subj sans(or empty) extendedKeyUsage
  local n=$1 subj=$2 san=$3 eku=$4
  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj "$subj" 2>/dev/null
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"; echo "extendedKeyUsage=$eku"; [ -n "$san" ] && echo "subjectAltName=$san"; } > $n.ext
  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 365 -extfile $n.ext 2>/dev/null
  rm -f $n.csr $n.ext
}
sign apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" serverAuth
sign admin "/O=system:masters/CN=admin" "" clientAuth
sign webhook "/CN=webhook" "IP:127.0.0.1,DNS:localhost" serverAuth
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
echo "test-admin-token,admin,admin-uid,system:masters" > tokens.csv
ls "$D"
