#!/usr/bin/env bash
# `make demo`: install, then start vLLM in the background first (it needs only the prepared model) and build the
# store, the product index, the intent classifier and the customer segments while it loads; wait for vLLM, then
# start the pages (`kefu serve --demo`). Every step prints its time and the end prints the total. Each step skips
# what is already built, so a second run takes seconds before vLLM's own load (~1.5 min on 2 cores).
# The steps that run side by side write their output to .kefu/logs/demo-STEP.log (shown when one fails).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s%N)
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT

secs() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
report() { printf 'demo: %-14s %7s s%s\n' "$1" "$2" "${3:-}" | tee -a "$SUMMARY"; }
step() {  # step NAME COMMAND...: run in the foreground, then print its time
  local name=$1 t; t=$(date +%s%N); shift
  "$@"
  report "$name" "$(secs "$t")"
}
PIDS=()
side_step() {  # side_step NAME COMMAND...: run beside the others, output in .kefu/logs/demo-NAME.log
  local name=$1; shift
  (
    t=$(date +%s%N)
    if "$@" >".kefu/logs/demo-$name.log" 2>&1; then
      report "$name" "$(secs "$t")" "  (beside the others)"
    else
      code=$?
      echo "demo: $name failed (exit $code); last lines of .kefu/logs/demo-$name.log:" >&2
      tail -n 30 ".kefu/logs/demo-$name.log" >&2
      exit "$code"
    fi
  ) &
  PIDS+=($!)
}
wait_side_steps() {
  local failed=0
  for pid in "${PIDS[@]}"; do wait "$pid" || failed=1; done
  PIDS=()
  [ "$failed" = 0 ] || { echo "demo: a build step failed (see above); fix it and run \`make demo\` again" >&2; exit 1; }
}

step install bash scripts/setup.sh
KEFU=.venv/bin/kefu
PY=.venv/bin/python
mkdir -p .kefu/logs
step model "$KEFU" llm prepare

# vLLM first: it loads for a minute or two and needs none of the builds below.
manage_llm=0
if [ -z "${KEFU_LLM_URL:-}" ] && ! "$KEFU" llm status >/dev/null 2>&1; then
  step "vLLM launch" "$KEFU" llm serve --background
  manage_llm=1
  trap 'rm -f "$SUMMARY"; "$KEFU" llm stop >/dev/null 2>&1 || true' EXIT  # until the pages take it over
fi

side_step intents "$PY" -c "from assistant.understanding.intents import ensure_trained; from kefu.settings import Settings; ensure_trained(Settings())"
step store "$KEFU" store build --if-missing
side_step index "$KEFU" index
side_step segments "$KEFU" segment fit --no-transformer --if-stale
wait_side_steps

if [ "$manage_llm" = 1 ]; then
  step "vLLM ready" "$KEFU" llm wait
fi
report "total" "$(secs "$T0")" "  (install to vLLM ready; the pages start next)"
echo "demo: summary"
cat "$SUMMARY"

# Print when the pages answer (kefu serve prints their URLs just before), then hand over to kefu serve.
base=$("$PY" -c "from kefu.settings import Settings; s = Settings(); print(f'http://{s.ui_host}:{s.ui_port}')")
(
  for _ in $(seq 1200); do
    if curl -sf -o /dev/null --max-time 1 "$base/health"; then
      printf 'demo: pages up   %7s s after `make demo` began: %s/\n' "$(secs "$T0")" "$base"
      exit 0
    fi
    sleep 0.5
  done
) &
flags=(--demo)
[ "$manage_llm" = 1 ] && flags+=(--stop-llm)  # Ctrl-C stops the pages and the vLLM started here
trap - EXIT
rm -f "$SUMMARY"
exec "$KEFU" serve "${flags[@]}"
