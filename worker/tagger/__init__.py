"""Serving: tokenization, the ONNX Runtime session, Viterbi, spans, the tagger. No torch (import contract)."""
