#!/bin/bash
# Start etcd (Debian etcd-server 3.4) + kube-apiserver v1.20.2 (built from Debian source by
# setup.sh) on 127.0.0.1. Writes PIDs to $R/etcd.pid and $R/apiserver.pid, logs to $R/*.log,
# the kubeconfig to $R/kubeconfig. Makes the PKI in $R/pki when it is not there.
# Environment: R (runtime directory), BIN, ETCD_PORT, ETCD_PEER_PORT, API_PORT, KCM_PORT,
# API_EXTRA_ARGS (more kube-apiserver flags), WITH_KCM=1 (also the controller manager).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
R=${R:-${KUBE_TEST_HOME:-/var/tmp/kube-test}/run}
P=$R/pki
BIN=${BIN:-${KUBE_TEST_HOME:-/var/tmp/kube-test}/bin}
ETCD_PORT=${ETCD_PORT:-23790}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-23800}; API_PORT=${API_PORT:-6443}
DEADLINE=$(( $(date +%s) + ${START_TIMEOUT_S:-120} ))
mkdir -p "$R"
[ -f "$P/ca.crt" ] || bash "$HERE/make-pki.sh" "$P" >/dev/null
rm -rf "$R/etcd-data"
wait_for() { # what pidfile command...
  local what=$1 pidfile=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "$what died"; tail -30 "$R/$what.log"; exit 1; }
    [ "$(date +%s)" -lt "$DEADLINE" ] || { echo "$what not ready in time"; tail -30 "$R/$what.log"; exit 1; }
    sleep 0.1
  done
}
t0=$(date +%s.%N)
etcd --name testcluster --data-dir "$R/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "testcluster=http://127.0.0.1:$ETCD_PEER_PORT" \
  --quota-backend-bytes=1073741824 \
  > "$R/etcd.log" 2>&1 &
echo $! > "$R/etcd.pid"
wait_for etcd "$R/etcd.pid" etcdctl --endpoints="http://127.0.0.1:$ETCD_PORT" endpoint health
t1=$(date +%s.%N)
# shellcheck disable=SC2086
"$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --client-ca-file="$P/ca.crt" --token-auth-file="$P/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --cert-dir="$R/apiserver-certs" \
  ${API_EXTRA_ARGS:-} \
  > "$R/apiserver.log" 2>&1 &
echo $! > "$R/apiserver.pid"
wait_for apiserver "$R/apiserver.pid" curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer test-admin-token" "https://127.0.0.1:$API_PORT/readyz"
t2=$(date +%s.%N)
cat > "$R/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testcluster
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$P/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$P/admin.crt", client-key: "$P/admin.key"}
- name: admin-token
  user: {token: test-admin-token}
contexts:
- name: testcluster
  context: {cluster: testcluster, user: admin}
- name: testcluster-token
  context: {cluster: testcluster, user: admin-token}
current-context: testcluster
KC
if [ "${WITH_KCM:-0}" = 1 ]; then
  # namespace deletion, garbage collection, service account tokens, endpoints and
  # endpointslices (no scheduler, no kubelet: pods stay Pending)
  "$BIN/kube-controller-manager" --kubeconfig="$R/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="${KCM_PORT:-10257}" --port=0 \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=true \
    --controllers='*,-nodeipam,-nodelifecycle,-attachdetach,-persistentvolume-binder,-persistentvolume-expander,-pv-protection,-pvc-protection,-ttl,-route,-service,-cloud-node-lifecycle' \
    > "$R/kcm.log" 2>&1 &
  echo $! > "$R/kcm.pid"
  wait_for kcm "$R/kcm.pid" curl -sfk "https://127.0.0.1:${KCM_PORT:-10257}/healthz"
fi
printf 'etcd healthy after %.2fs; kube-apiserver /readyz after a further %.2fs\n' \
  "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
