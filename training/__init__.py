"""Training code for Clearshot's learned deblur model (needs the ``train`` extra: torch, onnx).

Not part of the runtime package: ``core`` never imports from here.
"""
