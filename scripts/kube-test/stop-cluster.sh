#!/bin/bash
# Stops what start-cluster.sh started, by PID (TERM, then KILL after 5 s).
R=${R:-${KUBE_TEST_HOME:-/var/tmp/kube-test}/run}
for f in kcm apiserver etcd; do
  [ -f "$R/$f.pid" ] || continue
  p=$(cat "$R/$f.pid")
  kill "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  rm -f "$R/$f.pid"
done
