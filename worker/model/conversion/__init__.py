"""Conversion: RaNER checkpoints, the BERT-CRF in torch, INT8 quantization, ONNX export (torch)."""
