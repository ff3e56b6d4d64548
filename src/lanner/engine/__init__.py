"""L1: the engine (numpy IR, ONNX import, passes, calibration, plans, backends). Filled by the engine issue."""
