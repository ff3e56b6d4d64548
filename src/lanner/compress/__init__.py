"""L2: compression (pruning, quantization-aware training)."""
