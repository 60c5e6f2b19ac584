"""Llama 3.2 Vision (mlx-vlm's `mllama`): adapter, vision and language routes, patches."""
