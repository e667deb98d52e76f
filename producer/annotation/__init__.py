"""Annotation tools' formats (pure, no I/O): Label Studio tasks, doccano JSONL, character-level
CoNLL/BIO, each with its own way of counting characters, written from a job's documents and read
back from the tool's export as corrections (docs/corrections.md)."""
