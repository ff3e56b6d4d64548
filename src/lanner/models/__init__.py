"""L1: model zoo (torch): registry, backbones, heads, export to ONNX. Filled by the models/training issue."""
