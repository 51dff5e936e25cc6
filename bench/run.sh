#!/usr/bin/env bash
# mxfront benchmark: throughput, idle-connection memory and added latency, all on 127.0.0.1.
#
#   bench/run.sh [-r R] [-q] [-s reuse|permsg] [-p PARTS] [-m /path/to/mxfront]
#
#   -r R       repeat each throughput measurement R times, report the median   (env R, default 3)
#   -q         quick run: message counts / 10, idle clients and latency samples / 4   (env QUICK=1)
#   -s MODE    reuse  = many messages per SMTP session (smtp-source -d), sessions = concurrency (default)
#              permsg = one message per SMTP session (connect, HELO, MAIL..., QUIT for every message)
#                                                                               (env SESSION)
#   -p PARTS   subset of "abcd" (a+b = throughput table, c = idle memory, d = latency)   (env PARTS)
#   -m PATH    the mxfront binary (env MXFRONT, default <repo>/build/mxfront)
#   env EXTRA_PERMSG=0 drops the extra "one message per connection, 2 KB, c=50" row of the reuse table.
#   env BUILD_WAIT=S   wait at most S seconds (default 300) for a running compiler/ninja before each part.
#
# Needs smtp-source, smtp-sink, qmqp-sink (Debian package postfix) and python3 (stdlib only).
# Runs as root or not (smtp-sink is started with -u nobody when root). Every process started here is
# killed on exit; ports are picked at run time. If mxfront is not built, only the smtp-sink figures run.
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
MXFRONT=${MXFRONT:-$HERE/../build/mxfront}
R=${R:-3}
QUICK=${QUICK:-0}
SESSION=${SESSION:-reuse}
PARTS=${PARTS:-abcd}
EXTRA_PERMSG=${EXTRA_PERMSG:-1}
BUILD_WAIT=${BUILD_WAIT:-300}
TMO=${TMO:-240}            # hard limit per smtp-source run, seconds

while getopts "r:qs:p:m:h" o; do
  case $o in
    r) R=$OPTARG ;; q) QUICK=1 ;; s) SESSION=$OPTARG ;; p) PARTS=$OPTARG ;; m) MXFRONT=$OPTARG ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done
case $SESSION in reuse|permsg) ;; *) echo "bad -s $SESSION" >&2; exit 2 ;; esac

if [ "$QUICK" = 1 ]; then SCALE=10; SMALL=4; else SCALE=1; SMALL=1; fi
IDLE_N=$((2000 / SMALL)); LAT_N=$((2000 / SMALL))
FROM=alice@bench.test RCPT=bob@example.org

for t in smtp-source smtp-sink qmqp-sink python3 ss; do
  command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done

T=$(mktemp -d /tmp/mxfront-bench.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# More descriptors: 2000 idle clients + the server's 2000 sockets (same process limits are inherited).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_N * 2 + 512)) ] &&
  echo "warning: ulimit -n $(ulimit -n) is low for $IDLE_N idle connections" >&2

START=$(date +%s)
now_ns() { date +%s%N; }
# A free TCP port outside the ephemeral range (so TIME_WAIT of client sockets never collides with it).
free_port() {
  python3 - <<'EOF'
import random, socket
for _ in range(500):
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        s.close()
EOF
}
wait_listen() {  # port pid
  local i
  for i in $(seq 1 100); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
wait_builds() {
  local waited=0
  while pgrep -x cc1plus >/dev/null || pgrep -x ninja >/dev/null || pgrep -x collect2 >/dev/null; do
    [ $waited = 0 ] && echo "  (a compiler/ninja is running: waiting up to ${BUILD_WAIT}s)"
    sleep 5; waited=$((waited + 5))
    [ $waited -ge "$BUILD_WAIT" ] && { echo "  (still building after ${BUILD_WAIT}s: measuring anyway)"; break; }
  done
}
median() {
  [ $# = 0 ] && { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
    if (NR == 0) { print "-"; exit }
    if (NR % 2) printf "%.0f\n", a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)

start_smtp_sink() {  # port -> sets SINK_PID
  smtp-sink -4 "${SINK_USER[@]}" -m 4096 "127.0.0.1:$1" 4096 >"$T/smtp-sink.$1.log" 2>&1 &
  SINK_PID=$!; PIDS+=("$SINK_PID")
  wait_listen "$1" "$SINK_PID" || { echo "smtp-sink did not start:"; cat "$T/smtp-sink.$1.log"; exit 1; }
}
write_conf() {  # file smtp_port qmqp_port
  cat >"$1" <<EOF
[server]
hostname = "mx.bench.test"
io_threads = 0
shutdown_timeout = 5

[log]
level = "info"
syslog = false

[[listener]]
address = "127.0.0.1:$2"
profile = "mx"

[limits]
connections = 20000
connections_per_ip = 20000

[relay]
local_domains = ["example.org"]

[qmqp]
servers = ["127.0.0.1:$3"]
EOF
}
start_mxfront() {  # conf port log -> sets MX_PID
  "$MXFRONT" --config "$1" >>"$3" 2>&1 &
  MX_PID=$!; PIDS+=("$MX_PID")
  wait_listen "$2" "$MX_PID" || { echo "mxfront did not start:"; tail -20 "$3"; exit 1; }
}

# ---------------------------------------------------------------------------------------------- machine
echo "== mxfront benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postfix tools: $(dpkg-query -W -f '${Version}' postfix 2>/dev/null || echo '?'); python $(python3 -c 'import platform; print(platform.python_version())')"
HAVE_MX=0
if [ -x "$MXFRONT" ]; then
  HAVE_MX=1
  echo "mxfront: $MXFRONT ($("$MXFRONT" --version 2>&1 | head -1)), git $(git -C "$HERE/.." rev-parse --short=12 HEAD 2>/dev/null || echo '?')"
else
  echo "mxfront: NOT FOUND at $MXFRONT -- (b), and the mxfront halves of (c) and (d), are skipped"
fi
echo "settings: R=$R, QUICK=$QUICK, session mode=$SESSION, ulimit -n $(ulimit -n), parts=$PARTS"
echo

# Long-lived sinks and mxfront for (a), (b) and (d).
SMTP_SINK_PORT=$(free_port); start_smtp_sink "$SMTP_SINK_PORT"; SMTP_SINK_PID=$SINK_PID
QMQP_PORT=$(free_port)
qmqp-sink -4 "127.0.0.1:$QMQP_PORT" 4096 >"$T/qmqp-sink.log" 2>&1 &
QMQP_PID=$!; PIDS+=("$QMQP_PID")
wait_listen "$QMQP_PORT" "$QMQP_PID" || { echo "qmqp-sink did not start"; cat "$T/qmqp-sink.log"; exit 1; }
if [ $HAVE_MX = 1 ]; then
  MX_PORT=$(free_port)
  write_conf "$T/mxfront.toml" "$MX_PORT" "$QMQP_PORT"
  if ! "$MXFRONT" --check-config "$T/mxfront.toml" >"$T/check.log" 2>&1; then
    echo "mxfront --check-config failed:"; cat "$T/check.log"; exit 1
  fi
  MX_LOG=$T/mxfront.log; : >"$MX_LOG"
  start_mxfront "$T/mxfront.toml" "$MX_PORT" "$MX_LOG"; MX_MAIN_PID=$MX_PID
fi

# One smtp-source run. Prints "msgs_per_s server_cpu_us_per_msg qmqp_sink_cpu_us_per_msg" or "FAIL ...".
#   args: port server_pid size count conc mode
source_run() {
  local port=$1 spid=$2 size=$3 n=$4 c=$5 mode=$6 d=() t0 t1 c0 c1 q0 q1 rc
  [ "$mode" = reuse ] && d=(-d)
  c0=$(cpu_ticks "$spid"); q0=$(cpu_ticks "$QMQP_PID"); t0=$(now_ns)
  timeout "$TMO" smtp-source -4 "${d[@]}" -s "$c" -m "$n" -l "$size" -M bench.test -f "$FROM" -t "$RCPT" \
    "127.0.0.1:$port" >"$T/source.out" 2>&1
  rc=$?
  t1=$(now_ns); c1=$(cpu_ticks "$spid"); q1=$(cpu_ticks "$QMQP_PID")
  if [ $rc != 0 ]; then
    echo "FAIL rc=$rc: $(tail -c 300 "$T/source.out" | tr '\n' ' ')"; return
  fi
  awk -v n="$n" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v q0="$q0" -v q1="$q1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f %.1f %.1f\n", n / ((t1 - t0) / 1e9), (c1 - c0) / hz * 1e6 / n, (q1 - q0) / hz * 1e6 / n }'
}

# ---------------------------------------------------------------------------------------------- (a)+(b)
declare -a ROWS=()
if [[ $PARTS == *a* || $PARTS == *b* ]]; then
  ROWS+=("2048 20000 1 $SESSION" "2048 20000 10 $SESSION" "2048 20000 50 $SESSION" "2048 20000 200 $SESSION"
         "102400 2000 20 $SESSION")
  [ "$SESSION" = reuse ] && [ "$EXTRA_PERMSG" = 1 ] && ROWS+=("2048 20000 50 permsg")
  echo "== (a) smtp-source -> smtp-sink  vs  (b) smtp-source -> mxfront -> qmqp-sink   (median of $R; a/b interleaved)"
  TABLE=$T/table
  printf '%-7s %6s %5s %-7s | %10s %10s %6s | %7s %7s %7s | %s\n' size msgs conc session "(a) msg/s" "(b) msg/s" "b/a" \
    "sink" "mxfront" "qmqp-s" "runs (a | b), msg/s" >"$TABLE"
  for row in "${ROWS[@]}"; do
    read -r size n c mode <<<"$row"
    n=$((n / SCALE))
    wait_builds
    A=(); B=(); AC=(); BC=(); QC=(); AFAIL=""; BFAIL=""
    for rep in $(seq 1 "$R"); do
      order="a b"; [ $((rep % 2)) = 0 ] && order="b a"
      for w in $order; do
        if [ $w = a ]; then
          res=$(source_run "$SMTP_SINK_PORT" "$SMTP_SINK_PID" "$size" "$n" "$c" "$mode")
          case $res in FAIL*) AFAIL=$res; A+=(FAIL) ;; *) read -r r1 r2 r3 <<<"$res"; A+=("$r1"); AC+=("$r2") ;; esac
        elif [ $HAVE_MX = 1 ]; then
          : >"$MX_LOG"
          res=$(source_run "$MX_PORT" "$MX_MAIN_PID" "$size" "$n" "$c" "$mode")
          sleep 0.1
          ok=$(grep -c 'message id=.*reply="250' "$MX_LOG")
          case $res in
            FAIL*) BFAIL=$res; B+=(FAIL) ;;
            *) read -r r1 r2 r3 <<<"$res"; B+=("$r1"); BC+=("$r2"); QC+=("$r3")
               [ "$ok" != "$n" ] && BFAIL="mxfront logged $ok accepted messages of $n" ;;
          esac
        fi
      done
    done
    am=$(median $(printf '%s\n' "${A[@]}" | grep -v FAIL)); acpu=$(median "${AC[@]}")
    if [ $HAVE_MX = 1 ]; then
      bm=$(median $(printf '%s\n' "${B[@]}" | grep -v FAIL)); bcpu=$(median "${BC[@]}"); qcpu=$(median "${QC[@]}")
      ratio=$(awk -v a="$am" -v b="$bm" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "-" }')
    else bm="n/a"; bcpu="-"; qcpu="-"; ratio="-"; fi
    [ ${#AC[@]} = 0 ] && acpu="-"; [ $HAVE_MX = 1 ] && [ ${#BC[@]} = 0 ] && { bcpu="-"; qcpu="-"; }
    line=$(printf '%-7s %6s %5s %-7s | %10s %10s %6s | %7s %7s %7s | %s| %s' "$((size / 1024))KB" "$n" "$c" "$mode" \
      "$am" "$bm" "$ratio" "$acpu" "$bcpu" "$qcpu" "$(printf '%.0f ' "${A[@]/FAIL/0}")" "$( [ $HAVE_MX = 1 ] && printf '%.0f ' "${B[@]/FAIL/0}")")
    line="$line| load $(cut -d' ' -f1 /proc/loadavg)"
    echo "$line" >>"$TABLE"
    echo "  $line"
    [ -n "$AFAIL" ] && echo "    (a) $AFAIL" | tee -a "$TABLE"
    [ -n "$BFAIL" ] && echo "    (b) $BFAIL" | tee -a "$TABLE"
  done
  echo
  cat "$TABLE"
  echo "  sink / mxfront / qmqp-s = CPU time (user+sys, us) per message of smtp-sink in (a), of mxfront and of"
  echo "  qmqp-sink in (b); medians, 10 ms tick resolution"
  echo
fi

# ---------------------------------------------------------------------------------------------- (c)
if [[ $PARTS == *c* ]]; then
  wait_builds
  echo "== (c) resident memory per idle connection ($IDLE_N connections: banner, EHLO x, held)"
  if [ $HAVE_MX = 1 ]; then
    P1=$(free_port); Q1=$QMQP_PORT
    write_conf "$T/idle.toml" "$P1" "$Q1"
    start_mxfront "$T/idle.toml" "$P1" "$T/mxfront-idle.log"
    out=$(python3 "$HERE/idle_clients.py" --port "$P1" --pid "$MX_PID" --count "$IDLE_N" 2>&1)
    echo "  mxfront:   $(echo "$out" | grep -v '^RESULT' | tr '\n' ' ')$(echo "$out" | grep '^RESULT' | sed 's/^RESULT //')"
    kill -TERM "$MX_PID" 2>/dev/null; wait "$MX_PID" 2>/dev/null
  fi
  P2=$(free_port); start_smtp_sink "$P2"
  out=$(python3 "$HERE/idle_clients.py" --port "$P2" --pid "$SINK_PID" --count "$IDLE_N" 2>&1)
  echo "  smtp-sink: $(echo "$out" | grep -v '^RESULT' | tr '\n' ' ')$(echo "$out" | grep '^RESULT' | sed 's/^RESULT //')"
  kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null
  echo "  per_conn_kib = (VmRSS with the connections held - VmRSS before) / ok, in KiB (kernel socket buffers not included)"
  echo
fi

# ---------------------------------------------------------------------------------------------- (d)
if [[ $PARTS == *d* ]]; then
  wait_builds
  echo "== (d) latency, concurrency 1, one message (2 KB) per connection, $LAT_N messages; tx = MAIL sent .. 250 after '.'"
  for pass in 1 2; do
    [ $pass = 2 ] && [ $HAVE_MX = 0 ] && break
    if [ $pass = 1 ]; then name=smtp-sink; port=$SMTP_SINK_PORT; else name=mxfront; port=$MX_PORT; : >"$MX_LOG"; fi
    out=$(python3 "$HERE/latency.py" --port "$port" --count "$LAT_N" 2>&1)
    printf '  %-10s %s\n' "$name:" "$(echo "$out" | grep -v '^RESULT' | tr '\n' ' ')$(echo "$out" | grep '^RESULT' | sed 's/^RESULT //')"
  done
  echo "  over40ms = transactions slower than 40 ms (the Nagle / delayed-ACK signature)"
  echo
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); elapsed $(( $(date +%s) - START )) s"
