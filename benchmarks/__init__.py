"""Latency benchmarks (desktop LiteRT, phone via adb), score, reports, and the toolkit's own speed benchmarks."""
