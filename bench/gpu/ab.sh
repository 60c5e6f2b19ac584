#!/usr/bin/env bash
# A/B on an NVIDIA host, same machine, same run: the engine before the inspect/ renovation
# (issue #16; the tree of commit 93f32ba, unpacked in .whl/base) against this tree, twice in
# alternation (base, head, base, head); then LoRA training steps/s, memory and the adapter's
# inference cost on 3B- and 7B-shaped folders (bench/lora_gpu.py, issue #18).
#
# Here first:  ../shared/tools/mlx-cuda-bundle .mlxcuda
#              pip download (cp312 manylinux) pydantic pydantic-core annotated-types
#                typing-inspection typing-extensions -d .whl
#              git archive 93f32ba pnp_vision bench prompts pyproject.toml | tar -x -C .whl/base
#   call 1 (carry .mlxcuda/a):       bash bench/gpu/ab.sh part1
#   call 2 (carry .mlxcuda/b .whl):  bash bench/gpu/ab.sh part2   (A/B; LORA=1 adds LoRA;
#                                    AB=0 skips the A/B)
set -uo pipefail
stage=${1:?usage: ab.sh part1|part2}
out=${OUT:-bench/results}
mkdir -p "$out"
py=python3
if [ "$stage" = part1 ]; then
  mkdir -p /var/tmp/mlxparts && cp .mlxcuda/a/* /var/tmp/mlxparts/ && echo "part 1 copied"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py -c "import cv2, tqdm; print('cv2', cv2.__version__)" 2>&1 | tail -1
  exit 0
fi
source .mlxcuda/b/install.sh || { echo "mlx bundle install failed ($?)"; exit 3; }
$py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
base_path=$PYTHONPATH
export PNP_VISION_VISION_ATTENTION=${PNP_VISION_VISION_ATTENTION:-sdpa} HF_HUB_OFFLINE=1
export PYTHONUNBUFFERED=1
run() {  # tree label
  local tree=$1 label=$2
  echo "== $label ($tree)"
  (cd "$tree" && PYTHONPATH="$PWD:/tmp/site:$base_path" PNP_BENCH_OUT="$OLDPWD/$out" \
    timeout 170 $py bench/perf_inspect.py --shape 7b --checkpoint bf16 --repeat 20 \
      --plain-repeat 3 --questions 4 --engine --plain-vision-fix matmul --out "ab_7b_$label" \
      2>&1 | grep -v Warning | tail -12)
}
if [ "${AB:-1}" = 1 ]; then
run .whl/base base1
run . head1
run .whl/base base2
run . head2
$py - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
for path in sorted(glob.glob(os.path.join(out, "ab_7b_*.json"))):
    r = json.load(open(path))
    keys = {k: v for k, v in r.items() if isinstance(v, (int, float)) and "ms" in k}
    print(os.path.basename(path), json.dumps(keys)[:400])
EOF
fi
if [ "${LORA:-1}" = 1 ]; then
  for shape in 3b 7b; do
    echo "== lora $shape"
    PYTHONPATH="$PWD:/tmp/site:$base_path" PNP_BENCH_OUT="$out" timeout 280 \
      $py bench/lora_gpu.py --shape $shape --steps 10 --quiet --out "$out/lora_gpu_$shape.json" \
      2>&1 | grep -v Warning | tail -12
  done
fi
