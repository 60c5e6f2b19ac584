"""Offline evaluation of an inspector on labelled recordings (`pnp-vision eval`).

`evaluate.evaluate()` runs the questions, `labels` reads `labels.jsonl`, `report` renders the
table; the package import stays light so `pnp-vision --help` does not load numpy or mlx.
"""
