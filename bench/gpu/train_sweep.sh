#!/usr/bin/env bash
# Training-recipe sweep on an NVIDIA host (how docs/evaluation.md's recipe table was made):
# variants of `python -m pnp_vision.devtools.train` run side by side on one GPU, each then
# scored on the evaluation families in memory (bench/gpu/sweep_eval.py); summary.json in $OUT.
#   call 1 (carry .mlxcuda/a):             bash bench/gpu/train_sweep.sh part1
#   call 2 (carry .mlxcuda/b .whl):        SMOKE=0 STEPS=4000 BUDGET=330 EVALN=60 \
#                                          bash bench/gpu/train_sweep.sh sweep3
# A sweep file (bench/gpu/sweeps/NAME.txt) has one NAME:ARGS line per variant; ARGS may start
# with VIEW=WxH (the templates' views changed in a copy of the tree). Set OMP_NUM_THREADS=1.
set -uo pipefail
stage=$1
if [ "$stage" = part1 ]; then exec bash bench/gpu/ab.sh part1; fi  # the same first call
source .mlxcuda/b/install.sh || { echo "install failed"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD:/tmp/site:$PYTHONPATH PYTHONUNBUFFERED=1
python3 -c "import mlx.core as mx; print(mx.default_device())"
rm -rf /tmp/runs /tmp/logs; mkdir -p /tmp/runs /tmp/logs
budget=${BUDGET:-300}
if [ "${SMOKE:-1}" = 1 ]; then
# smoke: step time of the base variant
t0=$(date +%s.%N)
timeout 200 python3 -m pnp_vision.devtools.train --out /tmp/runs/smoke --steps 60 --set heldout_frames=8 --set helpers=2 > /tmp/logs/smoke.log 2>&1
rc=$?; t1=$(date +%s.%N)
tail -5 /tmp/logs/smoke.log
echo "smoke rc=$rc $(python3 -c "print($t1-$t0)") s"
[ $rc = 0 ] || { cp /tmp/logs/smoke.log $OUT/; exit 4; }
steps=$(python3 - <<'PY'
import os, re
t = [float(m) for m in re.findall(r"elapsed_s=([0-9.]+)", open("/tmp/logs/smoke.log").read())]
per = (t[-1] - t[0]) / 50 if len(t) >= 2 else 0.1
print(min(6000, int(0.75 * float(os.environ.get("BUDGET", 300)) / per / 1.6)))
PY
)
echo "steps per variant: $steps"
else steps=$STEPS; fi
while IFS=: read -r name args; do
  [ -z "$name" ] && continue
  tree=$PWD
  if [[ "$args" == VIEW=* ]]; then
    view=${args%% *}; view=${view#VIEW=}; args=${args#* }
    tree=/tmp/tree_$name; rm -rf $tree; mkdir -p $tree; cp -r pnp_vision prompts bench $tree/
    sed -i "s/^view = \[112, 84\]/view = [${view/x/, }]/" $tree/prompts/*.toml
    grep -h "^view" $tree/prompts/*.toml | sort | uniq -c
  fi
  ( cd $tree; export PYTHONPATH=$tree:$PYTHONPATH; timeout $((budget+120)) python3 -m pnp_vision.devtools.train --out /tmp/runs/$name --minutes $(python3 -c "print($budget/60)") --steps ${STEPS:-$steps} $args > /tmp/logs/$name.log 2>&1
    timeout ${EVALT:-150} python3 bench/gpu/sweep_eval.py /tmp/runs/$name /tmp/logs/$name.json ${EVALN:-100} >> /tmp/logs/$name.log 2>&1 ) &
done < bench/gpu/sweeps/$stage.txt
wait
python3 - <<'PY'
import glob, json, os
out = {}
for log in sorted(glob.glob('/tmp/logs/*.log')):
    name = os.path.basename(log)[:-4]
    r = {'log': open(log).read().splitlines()[-40:]}
    p = f'/tmp/runs/{name}/training.json'
    if os.path.exists(p):
        t = json.load(open(p)); r.update(steps=t['steps'], train_s=t['train_seconds'], heldout=t['heldout']['accuracy'])
    if os.path.exists(f'/tmp/logs/{name}.json'):
        r['families'] = json.load(open(f'/tmp/logs/{name}.json'))
    out[name] = r
json.dump(out, open(os.environ['OUT'] + '/summary.json', 'w'), indent=1)
for n, r in out.items():
    print(n, r.get('steps'), r.get('train_s'), r.get('heldout'))
    for f, v in r.get('families', {}).items():
        print('   ', f, {t: s['acc'] for t, s in v.items()})
PY
tar czf $OUT/runs.tgz -C /tmp runs --exclude='*/smoke*' 2>/dev/null
