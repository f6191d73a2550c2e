"""Speed, always as a ratio to a baseline measured in the same run, and the quality runs; `results/` holds the
JSON of the runs the README quotes. Each is run from the repository root as `python -m benchmarks.NAME`."""
