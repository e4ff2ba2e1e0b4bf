"""Runs an exported sentence-transformers graph (onnx_export.py) with onnxruntime.

Imports neither torch nor transformers: the encoder of an ONNX backend needs only
onnxruntime, the `tokenizers` library and the graph in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bot.embeddings.onnx_export import META_FILE, MODEL_FILE, TOKENIZER_FILE


class OnnxModel:
    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.prompt, self.inputs = str(meta["prompt"]), list(meta["inputs"])
        self.prompts: dict[str, str] = dict(meta["prompts"])
        self.dim = int(meta["dimension"])
        # Dynamic quantisation scales activations over the whole batch, padding included: batched,
        # a text would get a vector that depends on its neighbours (cosine 0.99 with its own).
        # One text per run keeps the index's vectors and the served ones the same.
        self.max_batch = 1 if meta["quantised"] else None
        # The tokenizer as sentence-transformers configured it (lower-casing, if any, is in its
        # normaliser), called as it calls it: prompt first, pad to the longest, truncate at max_seq_length.
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.enable_padding(pad_id=int(meta["pad_token_id"]), pad_token=str(meta["pad_token"]))
        self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads must not spin: the cores are shared with DIET and the other processes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int, prompt_name: str | None = None) -> np.ndarray:
        """Vectors of `texts` after the prompt `prompt_name` (the default prompt if the model has none by that name)."""
        prompt = self.prompts.get(prompt_name or "", self.prompt)
        batch_size = min(batch_size, self.max_batch or batch_size)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch([prompt + t for t in texts[start : start + batch_size]])
            columns = {
                "input_ids": [e.ids for e in encodings],
                "attention_mask": [e.attention_mask for e in encodings],
                "token_type_ids": [e.type_ids for e in encodings],
            }
            feeds = {name: np.asarray(columns[name], dtype=np.int64) for name in self.inputs}
            out[start : start + len(encodings)] = self.session.run(None, feeds)[0]
        return out
