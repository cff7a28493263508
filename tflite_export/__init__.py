"""TFLite export: converter recipes, LiteRT runtime, static GPU-delegate checker, fidelity check."""
