"""The operator console in the browser (`pnp-vision console`)."""
