"""Compression and deployment of a trained model: merge an adapter, quantize, export to ONNX, compare the variants."""
