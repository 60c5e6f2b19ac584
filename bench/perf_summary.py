"""Print the before/after tables from the JSON that the perf benchmarks wrote.

python bench/perf_summary.py [DIR]      # default bench/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_common as pc


def load(d: Path, pattern: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob(pattern))}


def main() -> None:
    d = Path(sys.argv[1] if len(sys.argv) > 1 else pc.ROOT / "bench" / "results")
    peers = load(d, "torch_peer_*.json")
    rows = []
    for name, r in load(d, "perf_inspect_*.json").items():
        fast = pc.med(r["fast_ms"])
        row = {
            "run": name.removeprefix("perf_inspect_"),
            "depth lm/vis": f"{r['lm_layers']}/{r['vision_layers']}",
            "plain ms": pc.med(r["plain_ms"]) if "plain_ms" in r else "",
            "fast ms": fast,
            "plain/fast": pc.med(r["plain_ms"]) / fast if "plain_ms" in r else "",
            "vision plain/fast": (
                f"{pc.med(r['plain_vision_ms']):.1f}/{pc.med(r['fast_vision_ms']):.1f}"
                if "plain_vision_ms" in r
                else f"-/{pc.med(r['fast_vision_ms']):.1f}"
            ),
            "max |dp|": f"{r['max_prob_diff']:.1e}" if "max_prob_diff" in r else "",
            "eager ms": pc.med(r["fast_eager_ms"]) if "fast_eager_ms" in r else "",
        }
        peer = peers.get(f"torch_peer_{r['shape']}")
        if peer and peer["lm_layers"] == r["lm_layers"] and r["device"] == "gpu":
            row["torch ms"] = peer["full_median_ms"]
            row["torch/fast"] = peer["full_median_ms"] / fast
        if "engine_1q_ms" in r:
            one = pc.med(r["engine_1q_ms"])
            row["engine 1q ms"] = one
            row[f"engine {r['engine_questions']}q/1q"] = pc.med(r["engine_nq_ms"]) / one
            row["engine |dp|"] = f"{max(r['engine_1q_prob_diff'], r['engine_nq_prob_diff']):.1e}"
            model = r["engine_1q_split"].get("model_ms")
            if model is not None:
                row["engine 1q model ms"] = model
            if "torch ms" in row:
                row["torch/engine"] = row["torch ms"] / one
                if model is not None:
                    row["torch/engine model"] = row["torch ms"] / model
        if "shared_ms" in r:
            row["4q shared/1q"] = pc.med(r["shared_ms"]) / fast
            if "packed_ms" in r:
                row["4q packed/1q"] = pc.med(r["packed_ms"]) / fast
            row["4q separate/1q"] = pc.med(r["separate_ms"]) / fast
        rows.append(row)
    cols = ["run", "depth lm/vis", "plain ms", "fast ms", "plain/fast", "vision plain/fast",
            "max |dp|", "eager ms", "torch ms", "torch/fast", "4q packed/1q", "4q shared/1q",
            "4q separate/1q", "engine 1q ms", "torch/engine", "engine 1q model ms",
            "torch/engine model", "engine 4q/1q",
            "engine |dp|"]  # fmt: skip
    if rows:
        print(pc.table(rows, cols))
    for name, r in load(d, "perf_inspect_*.json").items():
        if r.get("pixel_table"):
            print(f"\nlatency vs max_pixels and ROI ({name}):")
            print(pc.table(r["pixel_table"], ["max_pixels", "roi", "image", "image_tokens", "ms"]))
    probe = d / "sdpa_probe.json"
    if probe.exists():
        print("\nsdpa probe:")
        for k, v in json.loads(probe.read_text()).items():
            if not k.startswith("_"):
                print(f"  {k:30s} {v}")


if __name__ == "__main__":
    main()
