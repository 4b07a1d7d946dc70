#!/usr/bin/env bash
# The rolling replay's bench (issue 25): generates a network (default 60 stations × 800
# parts, 3 years of history, 12 future months with deliveries in the installed base),
# imports it into a fresh SQLite file and times `simulate --rolling` with the shipped model.
#   benches/rolling.sh [seed ...]        (default: 1 2 3)
# Env: STATIONS, PARTS, MODEL, OUT (work folder, default target/rolling-bench).
# Prints the time and peak memory of each replay; reports are in $OUT/seed-N/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/spareplan"
stations="${STATIONS:-60}"; parts="${PARTS:-800}"
model="${MODEL:-models/monthly-replenishment.toml}"
out="${OUT:-target/rolling-bench}"
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
for seed in "${seeds[@]}"; do
  dir="$out/seed-$seed"; rm -rf "$dir"; mkdir -p "$dir"
  "$bin" generate --stations "$stations" --parts "$parts" --years 3 --seed "$seed" \
      --start 2023-11 --future-months 12 --out "$dir/net" --truth "$dir/truth" > /dev/null
  DATABASE_URL="sqlite://$dir/net.db" "$bin" import --dir "$dir/net" > /dev/null
  /usr/bin/time -f "seed $seed: %e s wall, %M KB peak" -o "$dir/time.txt" \
    env DATABASE_URL="sqlite://$dir/net.db" "$bin" simulate --rolling \
      --truth "$dir/truth/future_demand.csv" --model "$model" \
      --json "$dir/rolling.json" --released "$dir/released.csv" > "$dir/report.txt"
  cat "$dir/time.txt"
  grep -E "^  (plan|min/max)|at the plan's|mean projected" "$dir/report.txt"
done
