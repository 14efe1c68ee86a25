"""Shipped model files (ONNX) and their registry (registry.json)."""
