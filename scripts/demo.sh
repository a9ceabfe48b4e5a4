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
PIDS=()
manage_llm=0
cleanup() {  # on failure or Ctrl-C before the pages take over: stop what this script started
  for pid in "${PIDS[@]}"; do kill $(pgrep -P "$pid") "$pid" 2>/dev/null || true; done
  [ "$manage_llm" = 1 ] && .venv/bin/python -m kefu.llm stop >/dev/null 2>&1
  rm -f "$SUMMARY"
}
trap cleanup EXIT

secs() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
report() { printf 'demo: %-14s %7s s%s\n' "$1" "$2" "${3:-}" | tee -a "$SUMMARY"; }
step() {  # step NAME COMMAND...: run in the foreground, then print its time
  local name=$1 t; t=$(date +%s%N); shift
  "$@"
  report "$name" "$(secs "$t")"
}
declare -A PID_OF
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
  PID_OF[$name]=$!
}
wait_for() {  # wait_for NAME...: until those side steps are done; stop here if one failed
  local name
  for name in "$@"; do
    wait "${PID_OF[$name]}" || { echo "demo: $name failed (see above); fix it and run \`make demo\` again" >&2; exit 1; }
  done
}

step install bash scripts/setup.sh
KEFU=.venv/bin/kefu
PY=.venv/bin/python
LLM=("$PY" -m kefu.llm)  # `kefu llm` without loading the other packages: seconds sooner
mkdir -p .kefu/logs
# vLLM first, before anything else loads the cores: it loads for a minute or two and needs only the prepared
# model (preparing it, hash checks, takes 13 s alone and five times that beside the builds), and the tuned reader
# when KEFU_READER asks for it (on a fresh clone that is tuned from the store first, then served).
# The demo's vLLM starts without compiling the model (KEFU_LLM_COMPILE=false): a minute sooner on 2 cores, 11%
# fewer tokens per second in one stream (see kefu/settings.py); set KEFU_LLM_COMPILE=true to compile.
export KEFU_LLM_COMPILE="${KEFU_LLM_COMPILE:-false}"
step model "${LLM[@]}" prepare
serve_llm=0
if [ -z "${KEFU_LLM_URL:-}" ] && ! "${LLM[@]}" status >/dev/null 2>&1; then
  manage_llm=1 serve_llm=1
fi
tuned=0  # 1: nothing to tune first (the packaged model reads, KEFU_READER=base by default, or it is tuned already)
{ [ -n "${KEFU_LLM_MODEL:-}" ] || [ "${KEFU_READER:-base}" = base ] || [ -f .kefu/models/smollm2-135m-kefu-reader/model.safetensors ]; } && tuned=1
if [ "$serve_llm" = 1 ] && [ "$tuned" = 1 ]; then
  step "vLLM launch" "${LLM[@]}" serve --background
  serve_llm=0
fi

# Beside everything below: the intent classifier (it needs only the installed packages) and the store.
# The classifier trains on one thread (OMP_NUM_THREADS=1): beside vLLM's load and the index it would otherwise
# spin two threads on two shared cores, and measured so, all the side steps ran several times slower.
OMP_NUM_THREADS=1 side_step intents "$PY" -c "from assistant.understanding.intents import ensure_trained; from kefu.settings import Settings; ensure_trained(Settings())"
side_step store "$KEFU" store build --if-missing

# The product index and then the segments read the store: they start when it is built, one after the other in
# the foreground (each uses both cores' threads; side by side they only contended).
wait_for store
if [ "$tuned" = 0 ] && [ -z "${KEFU_LLM_URL:-}" ]; then
  side_step tune "$KEFU" llm tune --if-missing
fi
step index "$KEFU" index
step segments "$KEFU" segment fit --no-transformer --if-stale
if [ "$serve_llm" = 1 ]; then
  [ "$tuned" = 0 ] && wait_for tune
  step "vLLM launch" "${LLM[@]}" serve --background
fi
wait_for intents

if [ "$manage_llm" = 1 ]; then
  step "vLLM ready" "${LLM[@]}" wait
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
