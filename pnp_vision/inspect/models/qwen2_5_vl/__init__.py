"""Qwen2.5-VL (mlx-vlm's `qwen2_5_vl`): adapter, vision tower, language passes, pixels, patches."""
