"""Service endpoints for operators: health and Prometheus metrics."""
