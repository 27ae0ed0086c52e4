"""Route handlers grouped by area of the API guide."""
