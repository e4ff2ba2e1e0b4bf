"""Export a sentence-transformers model to ONNX once, for bot/embeddings/onnx_runtime.py.

The graph is the model's whole sentence-transformers pipeline (transformer, pooling,
normalisation) traced from its own modules, so pooling is never re-implemented: the
runtime only tokenises and runs the graph. What the pipeline does before the
transformer (the default prompt, `query: ` for our model, and the maximum length)
is read from the loaded model and written beside the graph in encoder.json, with the
model's other prompts (e5's `passage: `, for answer passages).
Both backends get onnxruntime's BERT graph fusions, attention included (one `Attention`
op per layer; see `_fusable_bert`); "onnx-int8" adds its dynamic int8 quantisation of the
MatMuls (weights int8 per channel, activations quantised at run time).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "encoder.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def _pipeline_module(model, names: list[str], constants: dict[str, object]):  # noqa: ANN001, ANN202 - torch types
    import torch

    class Pipeline(torch.nn.Module):
        """sentence-transformers' forward over positional tensors, as torch.onnx.export needs."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = {**constants, **dict(zip(names, tensors, strict=True))}
            return self.model(features)["sentence_embedding"]

    return Pipeline().eval()


@contextlib.contextmanager
def _fusable_bert() -> Iterator[None]:
    """Trace BERT's attention the way onnxruntime's attention fusion recognises it.

    transformers 5 builds the padding mask with `Where`/`And` over index ranges and scales
    the scores with a `Mul`; the fusion knows the classic `(1 - mask) * min` additive mask
    and a `Div` by the square root of the head size (with a `Mul` it takes the scaling for
    the mask and gives up). Both are the same arithmetic: the exported vectors match torch's
    (tests/test_embeddings.py). Other architectures are traced unchanged.
    """
    import torch
    from transformers.models.bert import modeling_bert

    def additive_mask(config, inputs_embeds, attention_mask, **_):  # noqa: ANN001, ANN202, ARG001 - transformers' signature
        mask = attention_mask[:, None, None, :].to(inputs_embeds.dtype)
        return (1.0 - mask) * torch.finfo(inputs_embeds.dtype).min

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_):  # noqa: ANN001, ANN202, ARG001
        scale = query.size(-1) ** -0.5 if scaling is None else scaling
        scores = torch.matmul(query, key.transpose(2, 3)) / (1.0 / scale)  # a Div, for the fusion
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = torch.nn.functional.softmax(scores, dim=-1)
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights

    saved = modeling_bert.create_bidirectional_mask, modeling_bert.eager_attention_forward
    modeling_bert.create_bidirectional_mask, modeling_bert.eager_attention_forward = additive_mask, attention
    try:
        yield
    finally:
        modeling_bert.create_bidirectional_mask, modeling_bert.eager_attention_forward = saved


def _pin_head_count(model_file: Path, num_heads: int, head_size: int) -> None:
    """Write the head count into the graph's `view(batch, length, -1, head_size)` reshapes.

    The fusion reads the number of heads from those shapes and refuses a -1.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_file))
    graph = model.graph
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"}
    producers = {out: node for node in graph.node for out in node.output}

    def scalar(name: str) -> int | None:
        value = constants.get(name)
        return int(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    heads_name = "supportbot_num_heads"
    graph.initializer.append(onnx.helper.make_tensor(heads_name, onnx.TensorProto.INT64, [1], [num_heads]))
    for node in graph.node:
        shape = producers.get(node.input[1]) if node.op_type == "Reshape" else None
        if (
            shape is not None
            and shape.op_type == "Concat"
            and len(shape.input) == 4
            and scalar(shape.input[2]) == -1
            and scalar(shape.input[3]) == head_size
        ):
            shape.input[2] = heads_name
    used = {name for node in graph.node for name in node.input}
    orphans = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for node in orphans:  # the -1s replaced (onnxruntime warns about each one left)
        graph.node.remove(node)
    onnx.save(model, str(model_file))


def _export_float(location: str, out_dir: Path) -> dict[str, object]:
    import torch
    from sentence_transformers import SentenceTransformer

    # Eager attention traces to plain ONNX ops that onnxruntime's BERT fusions recognise.
    model = SentenceTransformer(location, device="cpu", model_kwargs={"attn_implementation": "eager"})
    prompt = model.prompts.get(model.default_prompt_name or "", "")
    sample = model.preprocess([prompt + "Where is my parcel?", prompt + "Gdzie jest moja paczka, zamówiona wczoraj?"])
    names = [name for name in INPUT_NAMES if name in sample]
    constants = {key: value for key, value in sample.items() if not isinstance(value, torch.Tensor)}  # "modality"
    # The tracer warns about shape checks that it records as constants: each compares two
    # lengths that are equal for every input (the outputs match torch's, tests/test_embeddings.py).
    with torch.no_grad(), warnings.catch_warnings(), _fusable_bert():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _pipeline_module(model, names, constants),
            tuple(sample[name] for name in names),
            str(out_dir / MODEL_FILE),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, dynamic axes as declared
        )
    tokenizer = model.tokenizer
    tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_FILE))
    config = model[0].config if hasattr(model[0], "config") else model[0].auto_model.config
    return {
        "prompt": prompt,
        "prompts": dict(model.prompts),  # by name: e5's "query" and "passage" (Encoder.encode_passages)
        "max_seq_length": int(model.max_seq_length),
        "dimension": int(model.get_embedding_dimension() or 0),
        "inputs": names,
        "pad_token": tokenizer.pad_token,
        "pad_token_id": int(tokenizer.pad_token_id),
        "hidden_size": int(config.hidden_size),
        "num_heads": int(config.num_attention_heads),
    }


def _optimise(model_file: Path, meta: dict[str, object], quantise: bool) -> None:
    """onnxruntime's BERT fusions (attention, layer norm, GELU), then for int8 its dynamic quantisation, in place.

    Per-channel weight scales: cosine with the float model 0.995-0.998 on our sample messages,
    against 0.975-0.992 with one scale per tensor, at the same speed. Only the MatMuls are
    quantised (attention output and feed-forward, three quarters of the weights' multiply-adds):
    the fused Attention (query/key/value) and the embedding table stay float. Quantising those
    too was a little faster but lost one held-out question in Polish and one in Russian; MatMuls
    alone lose none in any language. (On the articles' 1,064 cross-validated sample questions
    every variant is 0.4-0.9 points below float: they differ by about one question per language.)

    Weights use 7 bits of the 8 (`reduce_range`): without VNNI (AVX2 only, as on the AMD EPYC of
    2026-12-03) the u8 x s8 kernels add pairs of products in 16 bits, which 8-bit weights can
    saturate. There, with the body in the article score, 8 bits gave held-out Recall@1 92.7%
    against float's 93.8% (3 questions fewer; the bench's rule allows 1 point), cosine with float
    0.9961 on average (0.9914 at worst); 7 bits gave 93.4% and 0.9972 (0.9943), at the same speed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    num_heads, hidden_size = int(meta["num_heads"]), int(meta["hidden_size"])
    _pin_head_count(model_file, num_heads, hidden_size // num_heads)
    fused = model_file.with_name("fused.onnx")
    optimize_model(str(model_file), model_type="bert", num_heads=num_heads, hidden_size=hidden_size).save_model_to_file(
        str(fused)
    )
    if quantise:
        # The fused ops come from onnxruntime's own domain, which ONNX shape inference cannot type.
        options = {"DefaultTensorType": onnx.TensorProto.FLOAT}
        quantize_dynamic(
            str(fused),
            str(model_file),
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,  # 7-bit weights: see the docstring
            extra_options=options,
        )
        fused.unlink()
    else:
        fused.replace(model_file)


def build(location: str, out_dir: Path, quantise: bool) -> Path:
    """Write the ONNX folder to `out_dir` (built beside it and renamed, so a half-written one never loads)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        meta = _export_float(location, tmp)
        _optimise(tmp / MODEL_FILE, meta, quantise)
        (tmp / META_FILE).write_text(json.dumps({**meta, "quantised": quantise}, indent=2) + "\n", encoding="utf-8")
        try:
            tmp.rename(out_dir)
        except OSError:  # another process finished the same export first: keep its folder
            if not (out_dir / META_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
