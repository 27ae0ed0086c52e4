"""HTTP layer (Litestar). Nothing here imports torch."""
