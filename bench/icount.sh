#!/bin/bash
# Instructions a ds24-proxy binary executes for N requests of one scenario,
# counted by callgrind: repeatable whatever else the machine is doing, so two
# builds can be compared on a shared, noisy machine. Per request:
# (total(N) - total(1)) / (N - 1), which leaves out start-up and the first
# write's store setup.
# usage: bench/icount.sh BIN N SCENARIO OUT   (SCENARIO: get post action write idem)
# needs: valgrind, python3, and the bench upstream built (bench/upstream).
BIN=$1; N=$2; SCEN=$3; OUT=$4
UP=${BENCH_UPSTREAM:-$(dirname "$0")/upstream/target/release/ds24-bench-upstream}
KEY=4242-icount0000000000000000
DATA=$(mktemp -d)
$UP serve --listen 127.0.0.1:18081 --key $KEY --threads 1 >/dev/null 2>&1 & UPPID=$!
sleep 0.3
DS24_API_KEY=$KEY DS24_BASE_URL=http://127.0.0.1:18081/api/call DS24_PROXY_DATA_DIR=$DATA RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file=$OUT $BIN serve --listen 127.0.0.1:18082 >/dev/null 2>/dev/null & PID=$!
python3 - "$N" "$SCEN" <<'PY'
import http.client, sys, time, json
n=int(sys.argv[1]); scen=sys.argv[2]
for _ in range(600):
    try:
        c=http.client.HTTPConnection("127.0.0.1",18082,timeout=30); c.request("GET","/healthz"); c.getresponse().read(); break
    except Exception: time.sleep(0.1)
c=http.client.HTTPConnection("127.0.0.1",18082,timeout=60)
body16=b"x"*16384
for i in range(n):
    if scen=="get":
        c.request("GET","/listProducts?page=1")
    elif scen=="post":
        c.request("POST","/listProducts",body=body16,headers={"Content-Type":"application/x-www-form-urlencoded"})
    elif scen=="write":
        c.request("POST","/updatePurchase",body=b"purchase_id=P1&data[note]=x",headers={"Content-Type":"application/x-www-form-urlencoded"})
    elif scen=="idem":
        c.request("POST","/updatePurchase",body=b"purchase_id=P1&data[note]=x",headers={"Content-Type":"application/x-www-form-urlencoded","Idempotency-Key":"k-%d"%i})
    elif scen=="action":
        c.request("POST","/actions/list-products",body=b"{}",headers={"Content-Type":"application/json"})
    r=c.getresponse(); r.read()
    assert r.status==200, (r.status)
PY
kill -TERM $PID; wait $PID 2>/dev/null; kill $UPPID; wait $UPPID 2>/dev/null
rm -rf "$DATA"
grep -h "^summary:\|^totals:" $OUT | head -1
