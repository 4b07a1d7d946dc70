#!/usr/bin/env bash
# Load benchmark of the HTTP API (issue 4): availability look-ups on the demo data mixed
# with 5 % stock writes (receipts of one unit, each with its own idempotency key), on
# SQLite and then on PostgreSQL, with wrk on
# loopback. Prints throughput, p50/p99 latency and the count of failed requests.
#
#   benches/load.sh                 # both backends, 20 s each
#   DURATION=30s CONNECTIONS=32 benches/load.sh sqlite
#
# Needs: wrk (installed from Debian's packages if missing), a release build (made here),
# PostgreSQL at 127.0.0.1:5432 with trust auth for the postgres user (for that backend).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18080}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -eq 0 ] && BACKENDS=(sqlite postgres)

if ! command -v wrk >/dev/null; then
    echo "installing wrk …"
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || {
        echo "cannot install wrk (apt-get install wrk)" >&2
        exit 1
    }
fi

# PROFILE=debug skips the release build (for checking the script, not for figures).
# SPAREPLAN_BIN=path measures that binary as it is (e.g. a copy, when other worktrees share
# the target dir and may relink its binary mid-run).
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SPAREPLAN_BIN:-$TARGET/$PROFILE/spareplan}
if [ -z "${SPAREPLAN_BIN:-}" ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release --quiet --bin spareplan
    else
        cargo build --quiet --bin spareplan
    fi
fi
WORK=$(mktemp -d)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Look-up targets: every part code × every station of the demo data, shuffled.
awk -F, 'NR > 1 { print $1 }' data/demo/parts.csv > "$WORK/parts"
awk -F, 'NR > 1 && $3 == "station" { print $1 }' data/demo/locations.csv > "$WORK/stations"
awk 'NR == FNR { s[n++] = $0; next } { for (i = 0; i < 3; i++) print $0 "," s[int(rand() * n)] }' \
    "$WORK/stations" "$WORK/parts" | shuf --random-source=<(yes) > "$WORK/targets"

cat > "$WORK/mix.lua" <<'LUA'
-- 95 % GET availability, 5 % writes: a receipt of 1, then (next write on this connection)
-- the issue of that unit, each with its own idempotency key.
local targets = {}
for line in io.lines(os.getenv("TARGETS")) do
  local part, station = line:match("([^,]+),([^,]+)")
  targets[#targets + 1] = { part, station }
end
local token = os.getenv("TOKEN")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(thread_id * 7919)
end

function request()
  counter = counter + 1
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  if counter % 20 == 0 then
    -- A receipt of one unit. (Issues are not mixed in: wrk shares this script's state
    -- across a thread's connections, so an issue could overtake the receipt it relies on
    -- and be refused for want of stock — a correct refusal, but not a load figure.)
    local key = thread_id .. "-" .. counter
    local t = targets[math.random(#targets)]
    return wrk.format("POST", "/api/v1/stations/" .. t[2] .. "/receipts", headers,
      '{"part_code":"' .. t[1] .. '","qty":1,"idempotency_key":"r-' .. key .. '"}')
  end
  local t = targets[math.random(#targets)]
  return wrk.format("GET", "/api/v1/availability?part=" .. t[1] .. "&station=" .. t[2], headers)
end

local failed = 0
function response(status, headers, body)
  if status >= 400 then failed = failed + 1 end
end
LUA

run_backend() {
    local backend=$1 url
    case $backend in
        sqlite) url="sqlite://$WORK/load.db" ;;
        postgres)
            psql "$PG_ADMIN" -qc "drop database if exists spareplan_load with (force)" >/dev/null
            psql "$PG_ADMIN" -qc "create database spareplan_load" >/dev/null
            url="postgres://postgres@127.0.0.1:5432/spareplan_load" ;;
        *) echo "unknown backend $backend" >&2; return 1 ;;
    esac
    echo "== $backend: importing data/demo"
    DATABASE_URL=$url "$BIN" import --dir data/demo >/dev/null
    local token
    token=$(DATABASE_URL=$url "$BIN" token create --role admin --label load 2>/dev/null)
    DATABASE_URL=$url RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" &
    SERVER=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    # Warm up (caches, pool), then measure.
    TARGETS="$WORK/targets" TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$WORK/mix.lua" \
        "http://127.0.0.1:$PORT" >/dev/null
    TARGETS="$WORK/targets" TOKEN=$token wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$WORK/mix.lua" "http://127.0.0.1:$PORT" | tee "$WORK/$backend.out"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
    local rps p50 p99 non2xx errors
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$WORK/$backend.out")
    p50=$(awk '$1 == "50%" { print $2 }' "$WORK/$backend.out")
    p99=$(awk '$1 == "99%" { print $2 }' "$WORK/$backend.out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' "$WORK/$backend.out")
    errors=$(awk '/Socket errors/ { print }' "$WORK/$backend.out")
    printf '%-8s requests/s %s (look-ups/s %.0f), p50 %s, p99 %s, failed %s%s\n' \
        "$backend" "$rps" "$(awk -v r="$rps" 'BEGIN { print r * 0.95 }')" "$p50" "$p99" "${non2xx:-0}" \
        "${errors:+, $errors}" >> "$WORK/summary"
}

for b in "${BACKENDS[@]}"; do run_backend "$b"; done
echo
echo "== summary ($THREADS wrk threads, $CONNECTIONS connections, $DURATION, 5 % writes)"
cat "$WORK/summary"
