"""Running the pieces together as real processes: `launch` (a capture daemon and a worker wired
on fresh endpoints, used by the demo, tests and benchmarks) and `demo` (the README's main job)."""
