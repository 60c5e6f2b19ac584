#!/usr/bin/env bash
# Train inspector folders on an NVIDIA host across several device calls (a call lasts at most
# 10 minutes; a run may take longer): the runs go on in the background between calls.
#
# Here first:  ../shared/tools/mlx-cuda-bundle .mlxcuda ; pydantic wheels (cp312) in .whl
#   call 1 (carry .mlxcuda/a):        bash bench/gpu/train_world.sh part1
#   call 2 (carry .mlxcuda/b .whl):   RUNS="name:ARGS;name2:ARGS" bash bench/gpu/train_world.sh start
#   call 3.. (no carry):              bash bench/gpu/train_world.sh wait [SECONDS]
# `start` installs mlx, starts each run (python -m pnp_vision.devtools.train --out
# /var/tmp/runs/NAME ARGS) detached from the call, and waits like `wait`. `wait` prints each
# run's progress until all are done or SECONDS pass, then packs every finished folder into
# $OUT/NAME.tgz (with its log). The machine must stay warm between calls (30 s).
set -uo pipefail
stage=${1:?usage: train_world.sh part1|start|wait [SECONDS]}
runs=/var/tmp/runs
logs=/var/tmp/logs
if [ "$stage" = part1 ]; then
  # part 1 whole (.mlxcuda/a), or in halves a1 then a2 (two calls) when the tree and part 1
  # together pass a call's 64 MiB: split -n 2 -d .mlxcuda/a/cuda.part.1, into a1/ and a2/
  mkdir -p /var/tmp/mlxparts
  if [ -d .mlxcuda/a ]; then cp .mlxcuda/a/* /var/tmp/mlxparts/ && echo "part 1 copied"; fi
  if [ -d .mlxcuda/a1 ]; then cat .mlxcuda/a1/* > /var/tmp/mlxparts/cuda.part.1 && echo "half 1"; fi
  if [ -d .mlxcuda/a2 ]; then cat .mlxcuda/a2/* >> /var/tmp/mlxparts/cuda.part.1 && echo "half 2"; fi
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  nproc
  (setsid nohup sleep 1200 > /dev/null 2>&1 &)  # does a detached process outlive the call?
  exit 0
fi
if [ "$stage" = start ]; then
  if pgrep -x sleep > /dev/null; then echo "detached processes outlive a call"; else
    echo "detached processes DO NOT outlive a call"; fi
  source .mlxcuda/b/install.sh || { echo "mlx bundle install failed ($?)"; exit 3; }
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  mkdir -p $runs $logs
  env | grep -E '^(PYTHONPATH|LD_LIBRARY_PATH)=' | sed 's/^/export /' > /var/tmp/env.sh
  echo "export PYTHONPATH=/tmp/site:\${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1" \
    >> /var/tmp/env.sh
  source /var/tmp/env.sh
  python3 -c "import mlx.core as mx; print(mx.default_device(), mx.__version__)"
  IFS=';' read -ra items <<< "${RUNS:?RUNS=name:args;...}"
  for item in "${items[@]}"; do
    name=${item%%:*}; args=${item#*:}
    echo "start $name: $args"
    # each run its own copy of the tree (later calls replace the working tree, the runs keep
    # theirs; models/ for --init-from); SETUP_<name> (a shell command) may change it first, e.g.
    # SETUP_ponV="sed -i 's/^view = .*/view = [224, 168]/' prompts/part_on_nozzle.toml"
    tree=/var/tmp/tree-$name && rm -rf $tree && mkdir -p $tree
    cp -r pnp_vision prompts bench models pyproject.toml $tree/
    setup="SETUP_$name"
    if [ -n "${!setup:-}" ]; then (cd $tree && eval "${!setup}") && echo "  setup: ${!setup}"; fi
    (cd $tree && setsid nohup bash -c "source /var/tmp/env.sh; \
      python3 -m pnp_vision.devtools.train --out $runs/$name $args > $logs/$name.log 2>&1; \
      echo \"exit \$?\" >> $logs/$name.log" > /dev/null 2>&1 &)
  done
  sleep 30  # the runs create their logs
fi
limit=${2:-540}
t0=$(date +%s)
while :; do
  busy=0
  for log in $logs/*.log; do
    [ -f "$log" ] || continue
    grep -q "^exit " "$log" || busy=1
  done
  now=$(date +%s)
  if [ $busy = 0 ] || [ $((now - t0)) -ge "$limit" ]; then break; fi
  sleep 20
done
for log in $logs/*.log; do
  name=$(basename "$log" .log)
  echo "== $name: $(grep -c 'step ' "$log") progress lines"
  grep -E "step |saved|exit |Error|error" "$log" | tail -4
  if grep -q "^exit 0" "$log" && [ -d "$runs/$name" ]; then
    cp "$log" "$runs/$name/train.log"
    tar -C $runs -czf "$OUT/$name.tgz" "$name" && echo "packed $name"
  fi
done
