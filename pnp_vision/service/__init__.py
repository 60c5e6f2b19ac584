"""The resident inspection worker and the tools around it.

- `worker`: the I/O thread (ROUTER, request checks, frame choice, replies) and `Worker.serve()`.
- `model_thread`: the one thread that owns MLX and the `Inspector`.
- `jobs`: an admitted request (`Job`) and the bounded queue between the two threads.
- `framestore`: `latest` / `fresh` / `seq` frame choice over a `FrameSubscriber`.
- `launch`: start capture + worker subprocesses, wait until ready, stop (demo, tests, benches).
- `demo`, `commands`: `pnp-vision worker | ask | status | demo`.

Nothing here is imported by `pnp_vision.client`, so controllers don't pull in mlx or OpenCV.
"""
