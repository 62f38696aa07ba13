"""mia.export: ONNX / TorchScript export (needs torch) and the ONNX Runtime retriever
(``mia.export.runtime``, which never imports torch)."""
