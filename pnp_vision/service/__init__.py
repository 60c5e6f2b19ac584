"""The resident inspection worker.

- `worker`: `Worker`, which builds the parts below, binds the sockets and handles signals.
- `ioloop`: the I/O thread's event loop (ROUTER + wake-up poll, no tick) and request dispatch.
- `inspections`: an inspect request from admission to reply (checks, deadlines, completions).
- `retries`: resends of a pending or answered request (keyed by id and digest).
- `frame_waits`, `framestore`: jobs waiting for a frame; `latest` / `fresh` / `seq` choice.
- `jobs`: an admitted request (`Job`) and the bounded queue to the MLX thread.
- `model_thread`: the one thread that owns MLX and the `Inspector`; its `ModelState`.
- `status`, `replies`, `wakeup`, `history`: counters and status, sending, the poller's
  wake-up, `recent` / `crop`.
- `commands`: `pnp-vision worker | ask | status | demo`.

Nothing here is imported by `pnp_vision.client`, so controllers don't pull in mlx or OpenCV.
"""
