"""The second look: an evaluation-only renderer of pick-and-place frames, apart from the generator.

It shares no drawing code with `pnp_vision.devtools.synthetic*` (a test checks the imports both
ways) and is never used for training: its frames measure how the inspector does on a rig it was
not trained on. `python -m pnp_vision.devtools.second_look --out DIR` writes its families as
recording folders; `python -m pnp_vision.devtools.second_look.evaluate` scores a model on them.
"""
