"""Teaching a check on your own rig: label recorded frames, train, evaluate, deploy."""
