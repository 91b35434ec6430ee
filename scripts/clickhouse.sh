#!/usr/bin/env bash
# Local ClickHouse for development and CI: the ClickHouse 26.9 engine from the chdb-core wheel,
# served over the standard HTTP interface by scripts/clickhouse-server.py. No Docker needed.
#
#   scripts/clickhouse.sh install
#   scripts/clickhouse.sh start  [--port N] [--data-dir D]
#   scripts/clickhouse.sh stop   [--port N] [--data-dir D]
#   scripts/clickhouse.sh status [--port N]
#
# Environment: CLICKHOUSE_PORT (18123), CLICKHOUSE_DATA_DIR (<repo>/.data/clickhouse),
# CACHE_DIR (<repo>/.cache), PYTHON (python3). A server is known by its data dir: its pid file,
# log and config.xml live in <data-dir>.run/, and `stop` needs only --data-dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHDB_VERSION=26.9.0 # pinned: the launcher relies on chdb's internal _chdb.query
CACHE_DIR="${CACHE_DIR:-$ROOT/.cache}"
CHDB_DIR="$CACHE_DIR/chdb-$CHDB_VERSION"
PYTHON="${PYTHON:-python3}"
PORT="${CLICKHOUSE_PORT:-18123}"
DATA_DIR="${CLICKHOUSE_DATA_DIR:-$ROOT/.data/clickhouse}"

usage() {
  sed -n 's/^#   //p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

pings() { [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/ping" 2>/dev/null)" == "Ok." ]]; }

# A pid file outlives a kill -9, and the pid may be reused by then: only our launcher counts.
# A zombie has an empty command line, so it does not count either.
launcher_alive() {
  local pid="$1" cmd
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  else
    cmd="$(ps -p "$pid" -o args= 2>/dev/null || true)"
  fi
  [[ "$cmd" == *clickhouse-server.py* ]]
}

install() {
  [[ -d "$CHDB_DIR/chdb" ]] && return 0
  mkdir -p "$CACHE_DIR"
  # Install beside the target and rename at the end: an interrupted install never looks complete.
  INSTALL_TMP="$(mktemp -d "$CACHE_DIR/.chdb-$CHDB_VERSION.XXXXXX")"
  trap 'rm -rf "$INSTALL_TMP"' EXIT
  echo "Installing chdb-core==$CHDB_VERSION into $CHDB_DIR (about 180 MB download)..." >&2
  # --no-deps: pandas/pyarrow are only for chdb's DataFrame API, which the server does not use.
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    --no-deps --target "$INSTALL_TMP" "chdb-core==$CHDB_VERSION"
  chmod 755 "$INSTALL_TMP" # mktemp made it private
  [[ -e "$CHDB_DIR" ]] || mv "$INSTALL_TMP" "$CHDB_DIR" # another install may have finished meanwhile
}

start() {
  if pings; then
    echo "ClickHouse already answers on http://127.0.0.1:$PORT"
    return 0
  fi
  if [[ -f "$PID_FILE" ]] && launcher_alive "$(cat "$PID_FILE")"; then
    echo "A server (pid $(cat "$PID_FILE")) already uses $DATA_DIR but does not answer on port $PORT;" \
      "stop it first: $0 stop --data-dir $DATA_DIR" >&2
    exit 1
  fi
  install
  mkdir -p "$RUN_DIR"
  PYTHONPATH="$CHDB_DIR${PYTHONPATH:+:$PYTHONPATH}" nohup "$PYTHON" "$ROOT/scripts/clickhouse-server.py" \
    --http-port "$PORT" --data-dir "$DATA_DIR" --run-dir "$RUN_DIR" </dev/null >>"$LOG_FILE" 2>&1 &
  local pid=$!
  # The launcher says `ready` once /ping answers and the server there is its own; only then is the
  # pid file written, so a start that loses a race with another start cannot overwrite it.
  local i
  for ((i = 0; i < 300; i++)); do
    if grep -qs "^ready .*pid $pid)" "$LOG_FILE" && pings; then
      echo "$pid" >"$PID_FILE"
      echo "ClickHouse ready on http://127.0.0.1:$PORT (pid $pid, data $DATA_DIR, log $LOG_FILE)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  if pings; then # a concurrent start won the port or the data dir
    echo "ClickHouse already answers on http://127.0.0.1:$PORT"
    return 0
  fi
  echo "ClickHouse did not start on port $PORT; last lines of $LOG_FILE:" >&2
  tail -n 20 "$LOG_FILE" >&2
  exit 1
}

stop() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ -z "$pid" ]] || ! launcher_alive "$pid"; then
    rm -f "$PID_FILE"
    if pings; then
      echo "ClickHouse answers on port $PORT, but no server of ours runs on $DATA_DIR" >&2
      exit 1
    fi
    echo "ClickHouse is not running on $DATA_DIR"
    return 0
  fi
  kill -TERM "$pid"
  # Wait for the process itself: a new server on the same data dir fails while it lives.
  local i
  for ((i = 0; i < 100; i++)); do
    launcher_alive "$pid" || break
    sleep 0.2
  done
  if launcher_alive "$pid"; then
    echo "pid $pid ignored SIGTERM for 20 s; sending SIGKILL" >&2
    kill -9 "$pid" 2>/dev/null || true
    while launcher_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  echo "ClickHouse stopped (pid $pid, data $DATA_DIR)"
}

status() {
  if pings; then
    echo "ClickHouse answers on http://127.0.0.1:$PORT"
  else
    echo "No ClickHouse answers on port $PORT"
    exit 1
  fi
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$DATA_DIR" == /* ]] || DATA_DIR="$PWD/$DATA_DIR"
DATA_DIR="${DATA_DIR%/}"
RUN_DIR="$DATA_DIR.run"
PID_FILE="$RUN_DIR/clickhouse.pid"
LOG_FILE="$RUN_DIR/clickhouse.log"

case "$command" in
  install | start | stop | status) "$command" ;;
  *) usage ;;
esac
