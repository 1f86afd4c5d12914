"""``make bench``: throughput, latency, round trips and cold start of the function, beside the
least the same job can cost, written to BENCHMARKS.md. Measurement only: nothing here is deployed.
"""
