"""Benchmarks, each a command that prints figures: few-shot latency prediction (`latency`) and search (`nas`)
against ground-truth tables (protocol in `harness`), runtimes on this machine (`runtime`), fleet throughput
(`fleet`)."""
