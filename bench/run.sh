#!/usr/bin/env bash
# ds24-proxy beside nginx and haproxy, on loopback, in one run.
#
#   bash bench/run.sh            full run: 3 rounds x 10 s per contender and scenario
#   bash bench/run.sh --smoke    1 round x 2 s (keeps the harness from rotting)
#
# Scenarios: a small GET and a 16 KiB form POST for every contender, then
# ds24-proxy alone: a named action against the pass-through of the same
# function (issue 6: an action may cost at most 10% more).
#
# Contenders: the upstream alone, nginx, haproxy, hyper-floor (a bare proxy
# on the crates ds24-proxy is built on, doing nothing but injecting the key:
# the least this stack costs; bench/upstream/src/bin) and ds24-proxy.
#
# Installs nginx, haproxy and wrk from Debian if missing, builds ds24-proxy
# (cargo build --release --locked) and the static upstream in bench/upstream,
# starts everything on 127.0.0.1 with free ports, checks that every proxy
# really injects the key, then measures with wrk, interleaved and repeated.
# Prints a table per scenario and writes bench/results/latest.json. Exits
# non-zero if a contender failed a check or any request failed; never
# because of the ratios. See bench/README.md.
#
# Knobs (environment): BENCH_ROUNDS, BENCH_DURATION (seconds), BENCH_WARMUP
# (seconds, 0 = none), BENCH_CONNECTIONS (64), BENCH_WRK_THREADS (2),
# BENCH_RESULTS (JSON path), BENCH_KEEP=1 (keep the temp dir with configs
# and logs).
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

SMOKE=0
for arg in "$@"; do
    case $arg in
        --smoke) SMOKE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (use --smoke or nothing)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if ((SMOKE)); then
    ROUNDS=${BENCH_ROUNDS:-1} DURATION=${BENCH_DURATION:-2} WARMUP=${BENCH_WARMUP:-0}
else
    ROUNDS=${BENCH_ROUNDS:-3} DURATION=${BENCH_DURATION:-10} WARMUP=${BENCH_WARMUP:-2}
fi
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results/latest.json}
POST_BYTES=16384
LUA=$ROOT/bench/wrk/bench.lua
CONTENDERS=(upstream nginx haproxy hyper-floor ds24-proxy)
# scenario name, method, path, body bytes
SCENARIOS=("get GET /api/call/listProducts 0" "post16k POST /api/call/listPurchases $POST_BYTES")
# The third scenario compares ds24-proxy with itself: the named action
# (POST /actions/list-products, JSON input validated and encoded, envelope
# unwrapped) against the pass-through call of the same function made the
# way the action makes it: POST /api/call/listProducts with the same (here
# empty) form. Both send Digistore24 the same request, so the difference is
# what the action itself costs.
ACTION_PATH=/actions/list-products
ACTION_CONTENDERS=(ds24-proxy ds24-action)

log() { printf '== %s %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install
find_tool() { command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; } || true; }
missing=()
for tool in nginx haproxy wrk curl; do
    [[ -n $(find_tool "$tool") ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]} (Debian packages)"
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
NGINX=$(find_tool nginx) HAPROXY=$(find_tool haproxy) WRK=$(find_tool wrk)
command -v cargo >/dev/null || die "cargo is needed (install Rust with rustup)"

# ---------------------------------------------------------------- build
log "building ds24-proxy (cargo build --release --locked)"
cargo build --release --locked
PROXY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/ds24-proxy
# Which ds24-proxy was measured: the commit, and whether its sources differed.
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then git_rev+="+dirty"; fi
log "building the static upstream (bench/upstream)"
cargo build --release --locked --manifest-path bench/upstream/Cargo.toml \
    --target-dir bench/upstream/target
UPSTREAM_BIN=$ROOT/bench/upstream/target/release/ds24-bench-upstream
FLOOR_BIN=$ROOT/bench/upstream/target/release/ds24-bench-floor
[[ -x $PROXY_BIN && -x $UPSTREAM_BIN && -x $FLOOR_BIN ]] || die "build outputs missing"

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ds24-bench.XXXXXX")
chmod 755 "$WORK" # nginx workers run as nobody and must reach their temp dirs
STARTED=()        # "pid starttime" of every process this script started
declare -A PID=() # contender -> main pid
declare -A PORT=()

# Start time of a process (clock ticks since boot): with the pid it names
# one process, and it does not change when the process execs.
start_time() {
    local s f
    read -r s 2>/dev/null <"/proc/$1/stat" || return 1
    s=${s##*) }
    read -r -a f <<<"$s"
    [[ ${f[0]} != Z ]] || return 1 # exited, not yet reaped: gone
    echo "${f[19]}"
}

# Is pid still the process that had this start time?
same_proc() { [[ $(start_time "$1" 2>/dev/null) == "$2" ]]; }

# Stops one process we started, if it is still the one we started.
stop_proc() {
    local pid=$1 st=$2 i
    same_proc "$pid" "$st" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        same_proc "$pid" "$st" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? entry
    trap - EXIT INT TERM
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        entry=${STARTED[i]}
        stop_proc "${entry%% *}" "${entry#* }"
    done
    if ((rc != 0)) && [[ -d $WORK ]]; then
        for f in "$WORK"/*.log "$WORK"/nginx/error.log; do
            [[ -s $f ]] || continue
            printf -- '--- last lines of %s\n' "${f#"$WORK"/}" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "run.sh: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Records a just-started process (and, for nginx, its workers) for cleanup.
remember() {
    local st
    st=$(start_time "$1") || die "process $1 exited right after start"
    STARTED+=("$1 $st")
}

children_of() {
    local stat rest f
    for stat in /proc/[0-9]*/stat; do
        read -r rest 2>/dev/null <"$stat" || continue
        rest=${rest##*) }
        read -r -a f <<<"$rest"
        [[ ${f[1]} == "$1" ]] && { stat=${stat#/proc/}; echo "${stat%/stat}"; }
    done
    return 0
}

# The processes whose cost counts for a contender.
pids_of() {
    case $1 in
        nginx) children_of "${PID[nginx]}" ;; # its workers
        ds24-action) echo "${PID[ds24-proxy]}" ;;
        *) echo "${PID[$1]}" ;;
    esac
}

# utime + stime in clock ticks, summed over pids.
cpu_ticks() {
    local t=0 pid s f
    for pid in "$@"; do
        read -r s 2>/dev/null <"/proc/$pid/stat" || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}

# Peak resident set (VmHWM) in KiB, summed over pids.
peak_rss_kib() {
    local k=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        k=$((k + ${v:-0}))
    done
    echo "$k"
}

free_port() { "$UPSTREAM_BIN" free-port; }

# wait_http URL [curl args...]: until the URL answers anything, 10 s at most.
wait_http() {
    local url=$1 i
    shift
    for ((i = 0; i < 100; i++)); do
        if curl -s -o /dev/null --max-time 1 "$@" "$url"; then return 0; fi
        sleep 0.1
    done
    return 1
}

KEY="4242-$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
WRONG_KEY="9999-$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
CLK_TCK=$(getconf CLK_TCK)

start_upstream() {
    "$UPSTREAM_BIN" serve --listen 127.0.0.1:0 --key "$KEY" >"$WORK/upstream.out" 2>"$WORK/upstream.log" &
    PID[upstream]=$!
    remember "${PID[upstream]}"
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q '^listening ' "$WORK/upstream.out" 2>/dev/null && break
        sleep 0.05
    done
    PORT[upstream]=$(awk '/^listening / {sub(/.*:/, "", $2); print $2}' "$WORK/upstream.out")
    [[ -n ${PORT[upstream]} ]] || die "the upstream did not start"
}

start_nginx() {
    local port dir=$WORK/nginx
    port=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
# Written by bench/run.sh: nginx as a header-injecting reverse proxy.
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # Request bodies up to 64 KiB stay in memory (the default, 8 KiB,
    # would write every 16 KiB body to a temp file).
    client_body_buffer_size 64k;
    client_max_body_size 128m;
    keepalive_requests 1000000;
    upstream ds24 {
        server 127.0.0.1:${PORT[upstream]};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location /api/call/ {
            proxy_pass http://ds24;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-DS-API-KEY "$KEY";
        }
        location / { return 404; }
    }
}
EOF
    "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$WORK/nginx.log" 2>&1 ||
        die "nginx rejected its config: $(cat "$WORK/nginx.log")"
    "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >>"$WORK/nginx.log" 2>&1 &
    PID[nginx]=$!
    PORT[nginx]=$port
    remember "${PID[nginx]}"
    wait_http "http://127.0.0.1:$port/" || die "nginx did not start"
    local w
    for w in $(children_of "${PID[nginx]}"); do remember "$w"; done
}

start_haproxy() {
    local port cfg=$WORK/haproxy.cfg
    port=$(free_port)
    cat >"$cfg" <<EOF
# Written by bench/run.sh: haproxy as a header-injecting reverse proxy.
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always
frontend bench
    bind 127.0.0.1:$port
    http-request set-header X-DS-API-KEY "$KEY"
    default_backend ds24
backend ds24
    server upstream 127.0.0.1:${PORT[upstream]}
EOF
    "$HAPROXY" -c -q -f "$cfg" >"$WORK/haproxy.log" 2>&1 ||
        die "haproxy rejected its config: $(cat "$WORK/haproxy.log")"
    "$HAPROXY" -db -f "$cfg" >>"$WORK/haproxy.log" 2>&1 &
    PID[haproxy]=$!
    PORT[haproxy]=$port
    remember "${PID[haproxy]}"
    wait_http "http://127.0.0.1:$port/" || die "haproxy did not start"
}

start_floor() {
    local port
    port=$(free_port)
    "$FLOOR_BIN" --listen "127.0.0.1:$port" --upstream "127.0.0.1:${PORT[upstream]}" \
        --key "$KEY" >"$WORK/hyper-floor.log" 2>&1 &
    PID[hyper-floor]=$!
    PORT[hyper-floor]=$port
    remember "${PID[hyper-floor]}"
    wait_http "http://127.0.0.1:$port/" || die "hyper-floor did not start"
}

start_ds24() {
    local port
    port=$(free_port)
    mkdir -p "$WORK/ds24-data"
    # Default settings: nothing but the key, the base URL, the data dir and
    # the port; no inherited RUST_LOG or DS24_* variables.
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        DS24_API_KEY="$KEY" \
        DS24_BASE_URL="http://127.0.0.1:${PORT[upstream]}/api/call" \
        DS24_PROXY_DATA_DIR="$WORK/ds24-data" \
        "$PROXY_BIN" serve --listen "127.0.0.1:$port" >"$WORK/ds24-proxy.log" 2>&1 &
    PID[ds24-proxy]=$!
    PORT[ds24-proxy]=$port
    remember "${PID[ds24-proxy]}"
    wait_http "http://127.0.0.1:$port/healthz" || die "ds24-proxy did not start"
}

stop_contender() {
    local c=$1 entry keep=()
    local pid=${PID[$c]}
    for entry in "${STARTED[@]}"; do
        if [[ ${entry%% *} == "$pid" ]]; then stop_proc "$pid" "${entry#* }"; else keep+=("$entry"); fi
    done
    # nginx workers leave with their master; forget them (and anything gone).
    STARTED=()
    for entry in "${keep[@]}"; do
        if same_proc "${entry%% *}" "${entry#* }"; then STARTED+=("$entry"); fi
    done
    unset "PID[$c]"
    return 0
}

# ---------------------------------------------------------------- checks
BODY_FILE=$WORK/body.form
# The same kind of body wrk sends (form-encoded, exactly POST_BYTES bytes).
{
    printf 'page_size=100&search%%5Bproduct_id%%5D=10001%%2C10002&search%%5Bnote%%5D='
    head -c "$POST_BYTES" /dev/zero | tr '\0' 'x'
} | head -c "$POST_BYTES" >"$BODY_FILE"

CHECKS=$WORK/checks.tsv # contender check result detail
: >"$CHECKS"
check() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$CHECKS"; }

# status URL [curl args...] -> "<code> <file with headers+body>"
http_code() {
    local url=$1
    shift
    curl -s -o "$WORK/check.body" -D "$WORK/check.head" -w '%{http_code}' --max-time 10 "$@" "$url" || true
}

# Does the request head reach the upstream before the client has sent the
# whole body? Sends 1 KiB, waits a second, sends the rest; the upstream says
# (x-bench-head-ms) when the head arrived.
stream_probe() {
    local port=$1 path=$2 keyhdr=$3 fd t_rest resp head_ms
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nx-bench-probe: 1\r\n%sConnection: close\r\n\r\n' \
        "$path" "$POST_BYTES" "$keyhdr" >&"$fd"
    head -c 1024 "$BODY_FILE" >&"$fd"
    sleep 1
    t_rest=$(date +%s%3N)
    tail -c +1025 "$BODY_FILE" >&"$fd"
    resp=$(timeout 10 cat <&"$fd" | tr -d '\r') || true
    exec {fd}>&-
    head_ms=$(awk 'tolower($1) == "x-bench-head-ms:" {print $2}' <<<"$resp")
    if [[ -z $head_ms ]]; then
        echo unknown
    elif ((head_ms < t_rest)); then
        echo yes
    else
        echo no
    fi
}

# expect CONTENDER WHAT WANT GOT: records the check; false if GOT != WANT.
expect() {
    if [[ $4 == "$3" ]]; then
        check "$1" "$2" ok "$4"
    else
        check "$1" "$2" FAIL "$4"
        return 1
    fi
}

check_contender() {
    local c=$1 port=${PORT[$1]} code failed=0 keyhdr="" got
    local url="http://127.0.0.1:$port/api/call/listProducts"
    local keyargs=()
    if [[ $c == upstream ]]; then
        expect "$c" "no key -> 401" 401 "$(http_code "$url")" || failed=1
        expect "$c" "wrong key -> 401" 401 "$(http_code "$url" -H "X-DS-API-KEY: $WRONG_KEY")" || failed=1
        expect "$c" "right key -> 200" 200 "$(http_code "$url" -H "X-DS-API-KEY: $KEY")" || failed=1
        keyhdr="X-DS-API-KEY: $KEY"$'\r\n'
        keyargs=(-H "X-DS-API-KEY: $KEY")
    else
        code=$(http_code "$url")
        grep -q '"result":"success"' "$WORK/check.body" 2>/dev/null || code+=" (not the upstream's success envelope)"
        expect "$c" "no key from client -> 200 from upstream" 200 "$code" || failed=1
        expect "$c" "wrong key from client replaced -> 200" 200 \
            "$(http_code "$url" -H "X-DS-API-KEY: $WRONG_KEY")" || failed=1
    fi
    code=$(http_code "http://127.0.0.1:$port/api/call/listPurchases" "${keyargs[@]}" \
        -H 'x-bench-probe: 1' -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$BODY_FILE")
    got=$(awk 'tolower($1) == "x-bench-body-bytes:" {print $2}' "$WORK/check.head" | tr -d '\r')
    expect "$c" "16 KiB POST arrives whole" "200 $POST_BYTES bytes" "$code ${got:-no} bytes" || failed=1
    check "$c" "16 KiB POST streamed (head before body end)" info \
        "$(stream_probe "$port" /api/call/listPurchases "$keyhdr")"
    return "$failed"
}

# ---------------------------------------------------------------- measure
RUNS=$WORK/runs.tsv
RSS=$WORK/rss.tsv
: >"$RUNS"
: >"$RSS"

# "busy steal children": busy and steal ticks of the whole machine
# (/proc/stat), and the CPU of this shell's finished children (wrk).
machine_ticks() {
    local l f g
    read -r l </proc/stat
    read -r -a f <<<"$l" # cpu user nice system idle iowait irq softirq steal ...
    read -r l <"/proc/$$/stat"
    l=${l##*) }
    read -r -a g <<<"$l" # g[13], g[14]: cutime, cstime
    echo "$((f[1] + f[2] + f[3] + f[6] + f[7])) ${f[8]} $((g[13] + g[14]))"
}

run_wrk() { # scenario contender round seconds method path bytes -> appends to RUNS (round 0 = warm-up)
    local scen=$1 c=$2 round=$3 secs=$4 method=$5 path=$6 bytes=$7
    local url="http://127.0.0.1:${PORT[$c]}$path" out=$WORK/wrk-$scen-$c-$round.txt
    local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency --timeout 5s -s "$LUA")
    [[ $c == upstream ]] && args+=(-H "X-DS-API-KEY: $KEY")
    local mode=(get)
    [[ $method == POST ]] && mode=(post "$bytes")
    if [[ $c == ds24-action ]]; then
        url="http://127.0.0.1:${PORT[ds24-proxy]}$ACTION_PATH"
        mode=(action)
    fi
    local pids t0 t1 u0 u1 m0 m1
    pids=$(pids_of "$c")
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    u0=$(cpu_ticks "${PID[upstream]}")
    m0=$(machine_ticks)
    "$WRK" "${args[@]}" "$url" -- "${mode[@]}" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    m1=$(machine_ticks)
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    u1=$(cpu_ticks "${PID[upstream]}")
    ((round == 0)) && return 0
    local line
    line=$(grep '^BENCH ' "$out") || die "wrk printed no result: $(cat "$out")"
    # What else ran meanwhile: the machine's busy time less the contender,
    # the upstream and wrk (in cores, averaged over the run), and steal.
    awk -v s="$scen" -v c="$c" -v r="$round" -v cpu=$((t1 - t0)) -v up=$((u1 - u0)) -v hz="$CLK_TCK" \
        -v m0="$m0" -v m1="$m1" -v secs="$secs" '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        END {
            split(m0, a, " "); split(m1, b, " ")
            wrk = b[3] - a[3]
            other = (b[1] - a[1]) - cpu - up - wrk
            if (other < 0) other = 0
            rps = v["requests"] / (v["duration_us"] / 1e6)
            err = v["non2xx"] + v["connect"] + v["read"] + v["write"] + v["timeout"]
            printf "%s\t%s\t%d\t%.1f\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.3f\t%.3f\n", s, c, r, rps, v["p50_us"], v["p99_us"], err, v["requests"], cpu / hz, up / hz, wrk / hz, other / hz / secs, (b[2] - a[2]) / hz / secs
        }' <<<"$line" >>"$RUNS"
    printf '   %-8s %-10s round %d: %s\n' "$scen" "$c" "$round" "$(tail -n 1 "$RUNS" | awk -F'\t' '{printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d; other processes %.2f cores", $4, $5/1000, $6/1000, $7, $12}')" >&2
}

# Share of the machine's CPU time that was busy over the next 2 s.
busy_pct() {
    local f g b0 b1 t0 t1
    read -r -a f </proc/stat
    sleep 2
    read -r -a g </proc/stat
    b0=$((f[1] + f[2] + f[3] + f[6] + f[7] + f[8])) t0=$((f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7] + f[8]))
    b1=$((g[1] + g[2] + g[3] + g[6] + g[7] + g[8])) t1=$((g[1] + g[2] + g[3] + g[4] + g[5] + g[6] + g[7] + g[8]))
    echo $(((b1 - b0) * 100 / (t1 > t0 ? t1 - t0 : 1)))
}

nproc_n=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_pct)
log "CPU busy before the run: $busy_before% of $nproc_n cores (load average $load_before)"
if ((busy_before > 20)); then
    log "warning: something else is running; numbers may be noisy (see 'other processes' below)"
fi

start_upstream
log "upstream on 127.0.0.1:${PORT[upstream]}"

check_failed=0
for spec in "${SCENARIOS[@]}"; do
    read -r scen method path bytes <<<"$spec"
    log "scenario $scen: $method $path$( ((bytes > 0)) && echo " (form body, $bytes bytes)")"
    start_nginx
    start_haproxy
    start_floor
    start_ds24
    log "nginx :${PORT[nginx]}  haproxy :${PORT[haproxy]}  hyper-floor :${PORT[hyper-floor]}  ds24-proxy :${PORT[ds24-proxy]}"
    if [[ $scen == "${SCENARIOS[0]%% *}" ]]; then
        for c in "${CONTENDERS[@]}"; do
            check_contender "$c" || check_failed=1
        done
        awk -F'\t' '{ printf "   %-10s %-45s %-4s %s\n", $1, $2, $3, $4 }' "$CHECKS" >&2
        ((check_failed == 0)) || die "a contender failed the key check; nothing measured"
    fi
    if ((WARMUP > 0)); then
        for c in "${CONTENDERS[@]}"; do run_wrk "$scen" "$c" 0 "$WARMUP" "$method" "$path" "$bytes"; done
    fi
    n=${#CONTENDERS[@]}
    for ((r = 1; r <= ROUNDS; r++)); do
        for ((k = 0; k < n; k++)); do # a different contender goes first each round
            c=${CONTENDERS[(k + r - 1) % n]}
            run_wrk "$scen" "$c" "$r" "$DURATION" "$method" "$path" "$bytes"
        done
    done
    for c in nginx haproxy hyper-floor ds24-proxy; do
        # shellcheck disable=SC2046
        printf '%s\t%s\t%d\n' "$scen" "$c" "$(peak_rss_kib $(pids_of "$c"))" >>"$RSS"
    done
    for c in ds24-proxy hyper-floor haproxy nginx; do stop_contender "$c"; done
done

log "scenario action: POST $ACTION_PATH (JSON {}) against POST /api/call/listProducts (empty form), ds24-proxy only"
start_ds24
PORT[ds24-action]=${PORT[ds24-proxy]}
ac=$(curl -s -o "$WORK/action.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{}' "http://127.0.0.1:${PORT[ds24-proxy]}$ACTION_PATH") || ac=000
grep -q '"meta"' "$WORK/action.body" 2>/dev/null || ac+=" (not an action answer)"
expect ds24-action "POST $ACTION_PATH -> 200 with data and meta" 200 "$ac" || die "the action check failed"
if ((WARMUP > 0)); then
    for c in "${ACTION_CONTENDERS[@]}"; do run_wrk action "$c" 0 "$WARMUP" POST /api/call/listProducts 0; done
fi
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < 2; k++)); do
        c=${ACTION_CONTENDERS[(k + r - 1) % 2]}
        run_wrk action "$c" "$r" "$DURATION" POST /api/call/listProducts 0
    done
done
# shellcheck disable=SC2046
printf '%s\t%s\t%d\n' action ds24-proxy "$(peak_rss_kib $(pids_of ds24-proxy))" >>"$RSS"
stop_contender ds24-proxy
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
cpu_model=$(lscpu 2>/dev/null | awk -F: '/^Model name/ {sub(/^[ \t]+/, "", $2); print $2; exit}')
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
haproxy_v=$("$HAPROXY" -v 2>&1 | head -n 1 | awk '{print $3}')
wrk_v=$({ "$WRK" -v 2>&1 || true; } | head -n 1 | awk '{print $2}')
rustc_v=$(rustc --version 2>/dev/null || echo unknown)
mkdir -p "$(dirname "$RESULTS")"

awk -F'\t' \
    -v results="$RESULTS" -v smoke="$SMOKE" -v rounds="$ROUNDS" -v duration="$DURATION" \
    -v conns="$CONNECTIONS" -v wthreads="$WRK_THREADS" -v post_bytes="$POST_BYTES" \
    -v nproc="$nproc_n" -v cpu_model="$cpu_model" -v mem_kib="$mem_kib" -v kernel="$(uname -r)" \
    -v rustc="$rustc_v" -v nginx_v="$nginx_v" -v haproxy_v="$haproxy_v" -v wrk_v="$wrk_v" \
    -v load_before="$load_before" -v load_after="$load_after" -v busy_before="$busy_before" -v git_rev="$git_rev" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -v scen_list="get post16k action" -v cont_list="${CONTENDERS[*]} ds24-action" \
    -v scen_desc="get=GET /api/call/listProducts|post16k=POST /api/call/listPurchases, $POST_BYTES-byte form body|action=ds24-proxy: action POST $ACTION_PATH (JSON {}) vs pass-through POST /api/call/listProducts (empty form)" '
function median(key, n,    i, j, t, a) {
    for (i = 1; i <= n; i++) a[i] = vals[key, i]
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function js(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function num(x) { return x == "" ? "null" : x }
FILENAME ~ /runs/ {
    k = $1 SUBSEP $2; n[k]++
    vals[k, "rps", n[k]] = $4; vals[k, "p50", n[k]] = $5 / 1000; vals[k, "p99", n[k]] = $6 / 1000
    err[k] += $7; req[k] += $8; cpu[k] += $9; upcpu[k] += $10
    rj[k] = rj[k] (rj[k] == "" ? "" : ",") sprintf("{\"round\":%d,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%d,\"requests\":%d,\"cpu_s\":%.2f,\"upstream_cpu_s\":%.2f,\"wrk_cpu_s\":%.2f,\"other_cpu_cores\":%.3f,\"steal_cores\":%.3f}", $3, $4, $5 / 1000, $6 / 1000, $7, $8, $9, $10, $11, $12, $13)
    if ($12 > max_other) max_other = $12
    sum_other += $12; n_runs++
    if ($13 > max_steal) max_steal = $13
    total_err += $7
    next
}
FILENAME ~ /rss/ { rss[$1 SUBSEP $2] = $3 / 1024; next }
FILENAME ~ /checks/ {
    if ($3 == "FAIL") bad = 1
    if ($2 ~ /streamed/) streamed[$1] = $4
    cj = cj (cj == "" ? "" : ",") sprintf("{\"contender\":%s,\"check\":%s,\"result\":%s,\"detail\":%s}", js($1), js($2), js($3), js($4))
    next
}
END {
    ns = split(scen_list, S, " "); nc = split(cont_list, C, " ")
    split(scen_desc, D, "|"); for (i in D) { split(D[i], kv, "="); desc[kv[1]] = kv[2] }
    sj = ""
    for (si = 1; si <= ns; si++) {
        s = S[si]
        printf "\n%s  (%d connections, %d wrk threads, %d x %d s per contender)\n", desc[s], conns, wthreads, rounds, duration
        printf "%-11s %10s %8s %8s %7s %13s %7s %11s %9s\n", "contender", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MiB", "CPU s", "CPU us/req", "streamed"
        cjs = ""
        for (ci = 1; ci <= nc; ci++) {
            c = C[ci]; k = s SUBSEP c
            if (!n[k]) continue
            for (i = 1; i <= n[k]; i++) { vals["r", i] = vals[k, "rps", i]; vals["a", i] = vals[k, "p50", i]; vals["b", i] = vals[k, "p99", i] }
            R[k] = median("r", n[k]); P50[k] = median("a", n[k]); P99[k] = median("b", n[k])
            proxy = (c != "upstream")
            if (c == "ds24-action") rss[k] = rss[s SUBSEP "ds24-proxy"]
            rs = proxy ? sprintf("%.1f", rss[k]) : "-"
            cs = proxy ? sprintf("%.2f", cpu[k]) : "-"
            cu = proxy && req[k] ? sprintf("%.1f", cpu[k] * 1e6 / req[k]) : "-"
            st = (s == "post16k" && streamed[c] != "") ? streamed[c] : "-"
            printf "%-11s %10.0f %8.2f %8.2f %7d %13s %7s %11s %9s\n", c, R[k], P50[k], P99[k], err[k], rs, cs, cu, st
            cjs = cjs (cjs == "" ? "" : ",") sprintf("{\"name\":%s,\"rps_median\":%.1f,\"p50_ms_median\":%.3f,\"p99_ms_median\":%.3f,\"errors\":%d,\"requests\":%d,\"peak_rss_mib\":%s,\"cpu_s\":%s,\"cpu_us_per_request\":%s,\"upstream_cpu_s\":%.2f,\"streamed\":%s,\"rounds\":[%s]}",
                js(c), R[k], P50[k], P99[k], err[k], req[k], proxy ? sprintf("%.1f", rss[k]) : "null", proxy ? sprintf("%.2f", cpu[k]) : "null",
                proxy && req[k] ? sprintf("%.1f", cpu[k] * 1e6 / req[k]) : "null", upcpu[k], (s == "post16k" && streamed[c] != "") ? js(streamed[c]) : "null", rj[k])
        }
        rjs = ""
        d = s SUBSEP "ds24-proxy"
        ka = s SUBSEP "ds24-action"
        if (n[ka] && n[d] && R[d] && P99[d]) {
            tr = R[ka] / R[d]; pr = P99[ka] / P99[d]
            printf "ds24-action/ds24-proxy  throughput %.2fx (target >= 0.90: at most 10%% slower), p99 %.2fx\n", tr, pr
            rjs = sprintf("\"ds24-action/ds24-proxy\":{\"throughput\":%.3f,\"p99\":%.3f}", tr, pr)
        }
        for (oi = 1; oi <= 2; oi++) {
            o = oi == 1 ? "nginx" : "haproxy"; ko = s SUBSEP o
            if (!n[d] || !n[ko] || !R[ko] || !P99[ko]) continue
            tr = R[d] / R[ko]; pr = P99[d] / P99[ko]
            printf "ds24-proxy/%-11s throughput %.2fx (target >= 1.00), p99 %.2fx (target <= 1.00)\n", o, tr, pr
            rjs = rjs (rjs == "" ? "" : ",") sprintf("\"ds24-proxy/%s\":{\"throughput\":%.3f,\"p99\":%.3f}", o, tr, pr)
        }
        # The floor beside nginx (what the stack itself allows), and
        # ds24-proxy beside the floor (what its features cost).
        kf = s SUBSEP "hyper-floor"
        for (oi = 1; oi <= 2; oi++) {
            o = oi == 1 ? "nginx" : "hyper-floor"; ko = s SUBSEP o
            a = oi == 1 ? kf : d; an = oi == 1 ? "hyper-floor" : "ds24-proxy"
            if (!n[a] || !n[ko] || !R[ko] || !P99[ko]) continue
            tr = R[a] / R[ko]; pr = P99[a] / P99[ko]
            printf "%s/%-*s throughput %.2fx, p99 %.2fx (for reference)\n", an, 21 - length(an), o, tr, pr
            rjs = rjs (rjs == "" ? "" : ",") sprintf("\"%s/%s\":{\"throughput\":%.3f,\"p99\":%.3f}", an, o, tr, pr)
        }
        sj = sj (sj == "" ? "" : ",") sprintf("{\"name\":%s,\"request\":%s,\"contenders\":[%s],\"ratios\":{%s}}", js(s), js(desc[s]), cjs, rjs)
    }
    ok = !bad && total_err == 0
    printf "{\"generated_at\":%s,\"command\":%s,\"smoke\":%s,\"ok\":%s,\"ds24_proxy_commit\":%s,", js(date), js(smoke ? "bash bench/run.sh --smoke" : "bash bench/run.sh"), smoke ? "true" : "false", ok ? "true" : "false", js(git_rev) > results
    printf "\"settings\":{\"rounds\":%d,\"duration_s\":%d,\"connections\":%d,\"wrk_threads\":%d,\"post_body_bytes\":%d,\"latency\":\"median over rounds of each round p50/p99\"},", rounds, duration, conns, wthreads, post_bytes > results
    printf "\"machine\":{\"nproc\":%d,\"cpu\":%s,\"mem_total_mib\":%d,\"kernel\":%s,\"rustc\":%s,\"nginx\":%s,\"haproxy\":%s,\"wrk\":%s,\"cpu_busy_before_pct\":%d,\"load_before\":%s,\"load_after\":%s,\"other_cpu_cores_mean\":%.3f,\"other_cpu_cores_max\":%.3f,\"steal_cores_max\":%.3f},", nproc, js(cpu_model), mem_kib / 1024, js(kernel), js(rustc), js(nginx_v), js(haproxy_v), js(wrk_v), busy_before, js(load_before), js(load_after), n_runs ? sum_other / n_runs : 0, max_other, max_steal > results
    printf "\"checks\":[%s],\"scenarios\":[%s]}\n", cj, sj > results
    printf "\nother processes during the measured runs: mean %.2f, max %.2f cores; steal max %.2f cores%s\n", n_runs ? sum_other / n_runs : 0, max_other, max_steal, (max_other > 0.25 ? " (noisy: compare with a quieter run)" : "")
    printf "\nmachine: %d cores (%s), %d MiB, kernel %s, %s; nginx %s, haproxy %s, wrk %s; load %s -> %s\n", nproc, cpu_model, mem_kib / 1024, kernel, rustc, nginx_v, haproxy_v, wrk_v, load_before, load_after
    printf "ds24-proxy at %s; results: %s\n", git_rev, results
    exit ok ? 0 : 1
}' "$RUNS" "$RSS" "$CHECKS" || {
    rc=$?
    ((rc == 1)) && die "some requests failed (see the errors column)"
    die "the report failed"
}
