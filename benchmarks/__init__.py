"""On-demand benchmarks of the portal; ``python -m benchmarks`` runs them all and writes docs/performance.md."""
