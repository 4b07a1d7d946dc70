#!/usr/bin/env bash
# Same-run peer comparison for issue 5's car parts goal: statsforecast's intermittent models
# (IMAPA, Croston variants, ADIDA, TSB; Poisson quantiles around each model's mean) against
# `spareplan backtest`, train 39 months, forecast 12, both scored by one Python port of the
# backtest's stocking trade-off (Tally / stock_for_fill in src/forecast/backtest.rs) on the
# 32 written levels, the 8 standard ones and the issue's 7 (p50..p995). The port is checked
# against the figures the binary prints. See benches/carparts_peer.py.
#
#   benches/carparts_peer.sh
#   SPAREPLAN_BIN=target/release/spareplan WORK=/tmp/peer benches/carparts_peer.sh
#
# Needs: a release build of spareplan (not made here: `cargo build --release`), python3 with
# venv, PyPI for the first run (statsforecast + scipy into $VENV).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${SPAREPLAN_CARPARTS:-$ROOT/../shared/data/carparts.csv}
TRAIN=${TRAIN:-39}
HORIZON=${HORIZON:-12}
VENV=${VENV:-$HOME/.cache/spareplan-peer-venv}
WORK=${WORK:-$HOME/.cache/spareplan-peer}
BIN=${SPAREPLAN_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/spareplan-target}/release/spareplan}
# Pinned so the peer's figures do not move under us; override to try another release.
PEER_PKGS=${PEER_PKGS:-statsforecast==2.1.1 scipy}

start=$(date +%s%N)
[ -f "$DATA" ] || { echo "no data at $DATA (set SPAREPLAN_CARPARTS)" >&2; exit 1; }
[ -x "$BIN" ] || {
    echo "no spareplan binary at $BIN: cargo build --release (or set SPAREPLAN_BIN)" >&2
    exit 1
}
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv $VENV …"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import statsforecast, scipy, pandas' 2>/dev/null; then
    echo "installing $PEER_PKGS into $VENV …"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $PEER_PKGS
fi
mkdir -p "$WORK"

echo "ours: $BIN backtest --series $DATA --train $TRAIN --horizon $HORIZON --out $WORK/ours.csv"
t0=$(date +%s%N)
"$BIN" backtest --series "$DATA" --train "$TRAIN" --horizon "$HORIZON" \
    --out "$WORK/ours.csv" >"$WORK/ours-report.txt"
t1=$(date +%s%N)
secs() { local ms=$((($2 - $1) / 1000000)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
echo "ours: backtest took $(secs "$t0" "$t1") s (report in $WORK/ours-report.txt)"
"$VENV/bin/python" -c 'import statsforecast, scipy, numpy, pandas, sys; print("peer: python",
    sys.version.split()[0], "statsforecast", statsforecast.__version__, "scipy", scipy.__version__,
    "numpy", numpy.__version__, "pandas", pandas.__version__)'

# NUMBA_NUM_THREADS / OMP: one thread, so the peer's fits are the same run to run.
OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "$VENV/bin/python" "$ROOT/benches/carparts_peer.py" \
    --data "$DATA" --train "$TRAIN" --horizon "$HORIZON" \
    --ours-csv "$WORK/ours.csv" --ours-report "$WORK/ours-report.txt" \
    --work "$WORK" --source "$ROOT/src/forecast/backtest.rs" | tee "$WORK/table.txt"

end=$(date +%s%N)
echo
echo "total run time $(secs "$start" "$end") s"
