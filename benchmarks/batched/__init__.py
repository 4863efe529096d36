"""The ``batched`` benchmark: many small fits in one call against a curve_fit loop."""
