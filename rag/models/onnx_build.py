"""onnxruntime-genai's model builder in bounded memory: the child process ``rag.models.convert.export_onnx`` runs.

The stock builder loads the whole transformers model, builds every weight of the ONNX graph, then serialises the
graph to one float32 ``ModelProto`` for its int4 pass (``Model.to_nbits``): 13.5 GB at its peak for the 1.5B. Here
the same builder runs with four changes, made on its ``Model`` class in this process only:

- ``load_weights`` builds the model on the ``meta`` device (no memory); each decoder layer, the embedding and the
  output layer are read from the safetensors just before the builder turns them into nodes, and dropped after;
- the MatMul and Gather weights of those nodes are quantised right away, with onnxruntime's own kernels and
  naming (``DefaultWeightOnlyQuantizer``: ``quantize_matmul_4bits`` per column block, ``quantize_ndarray`` per
  row block), in slices of 64 MB of float32, and the float weights leave the graph;
- ``to_nbits`` then only finishes what is left (opset, IR version, unused initializers), on the graph itself;
- the builder's prints, progress bars and warnings go to stderr (the parent keeps its tail for an error
  message); one JSON line per step goes to stdout (``{"total": n}`` first, then ``{"done": k, "step": ...}``).

The result is the stock builder's, initializer for initializer (``tests/models/test_onnx_build.py`` compares them).
Only the default int4 method (symmetric or not, no per-node overrides) takes this path; other options fall back to
the stock ``to_nbits``.

Run: ``python -m rag.models.onnx_build -i HF_FOLDER -o OUT -p int4 -c SCRATCH [--extra_options k=v ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

SLICE_BYTES = 64 * 1024 * 1024  # float32 bytes of a weight quantised at once


class Progress:
    """JSON lines on the parent's pipe: the number of steps, then one line per finished step."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.done = 0

    def total(self, steps: int) -> None:
        self._send({"total": steps})

    def step(self, name: str) -> None:
        self.done += 1
        self._send({"done": self.done, "step": name})

    def _send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()


class Shards:
    """The tensors of a transformers folder (sharded with an index, or one ``model.safetensors``), read by name;
    each read opens and closes its file, so no mapping outlives the tensors taken from it."""

    def __init__(self, folder: Path) -> None:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            self.files = {name: folder / file for name, file in json.loads(index.read_text())["weight_map"].items()}
        else:
            from safetensors import safe_open

            single = folder / "model.safetensors"
            with safe_open(str(single), "pt") as handle:
                self.files = dict.fromkeys(handle.keys(), single)

    def read(self, names: list[str]) -> dict[str, Any]:
        from safetensors import safe_open

        out: dict[str, Any] = {}
        for file in {self.files[name] for name in names}:
            with safe_open(str(file), "pt") as handle:
                for name in names:
                    if self.files[name] == file:
                        out[name] = handle.get_tensor(name).clone()
        return out


def _set(module: Any, dotted: str, tensor: Any) -> None:
    import torch

    *path, attr = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, attr, torch.nn.Parameter(tensor, requires_grad=False))


class LowMemory:
    """The state the patched builder methods share: the weights on disk, the modules' names, the float sources
    of the initializers not quantised yet, and the progress pipe."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.shards: Shards | None = None
        self.names: dict[int, str] = {}
        self.tied: dict[str, str] = {}
        self.sources: dict[str, Any] = {}

    @contextmanager
    def loaded(self, module: Any) -> Iterator[None]:
        """``module``'s parameters read from the safetensors for the block, then put back on ``meta``."""
        import torch

        prefix = self.names[id(module)]
        params = [(name, p) for name, p in module.named_parameters(remove_duplicate=False)]
        wanted = {name: self._file_name(f"{prefix}.{name}" if prefix else name) for name, _ in params}
        assert self.shards is not None
        tensors = self.shards.read(sorted(set(wanted.values())))
        for name, _ in params:
            _set(module, name, tensors[wanted[name]])
        del tensors
        try:
            yield
        finally:
            for name, p in params:
                _set(module, name, torch.empty(p.shape, dtype=p.dtype, device="meta"))

    def _file_name(self, name: str) -> str:
        assert self.shards is not None
        if name in self.shards.files:
            return name
        return self.tied.get(name, name)


def _quant_config(builder: Any) -> Any:
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, QuantFormat

    attrs = builder.quant_attrs
    return DefaultWeightOnlyQuantConfig(
        block_size=attrs["matmul_block_size"],
        is_symmetric=attrs["is_symmetric"],
        accuracy_level=attrs["accuracy_level"],
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=attrs["op_types_to_quantize"],
        bits=attrs["bits"],
    )


def supported(builder: Any) -> bool:
    """Whether the builder's int4 pass is the one this module reproduces: the default method, QOperator format,
    4 bits, no per-node bit placement or overrides, CPU."""
    attrs = builder.quant_attrs
    return (
        getattr(builder, "quantization_algo", "default") == "default"
        and not attrs.get("use_qdq", False)
        and attrs.get("bits") == 4
        and not getattr(builder, "int4_customized_weight_config", None)
        and not getattr(builder, "exact_quant_overrides", None)
        and builder.quant_type is None
        and builder.ep == "cpu"
    )


def _float32_slices(source: Any, axis: int) -> Iterator[Any]:
    """``source`` (a torch tensor, 2-D) as float32 numpy slices of about ``SLICE_BYTES`` along ``axis``."""
    import numpy as np
    import torch

    other = source.shape[1 - axis]
    step = max(2, SLICE_BYTES // (4 * max(1, other)) // 2 * 2)  # even: int4 packing pairs rows (Gather)
    for start in range(0, source.shape[axis], step):
        part = source[start : start + step] if axis == 0 else source[:, start : start + step]
        yield np.ascontiguousarray(part.to(torch.float32).numpy())


def _initializer(builder: Any, proto: Any) -> None:
    """The TensorProto ``proto`` registered as an initializer under its name (reusing a value a node already
    refers to by that name)."""
    import onnx_ir as ir

    tensor = ir.serde.deserialize_tensor(proto)
    value = builder.make_value(proto.name, tensor.dtype, tensor.shape)
    value.const_value = tensor
    builder.model.graph.register_initializer(value)


def _quantize_matmul(builder: Any, node: Any, source: Any, quantizer: Any) -> Any:
    """``node`` (MatMul, weight ``source`` of shape K x N) as the MatMulNBits node onnxruntime's quantizer makes:
    the same kernel column block by column block, the same names and attributes."""
    import numpy as np
    import onnx
    import onnx_ir as ir

    config = quantizer.config
    weight = node.inputs[1].name
    packed, scales, zeros = [], [], []
    for part in _float32_slices(source, axis=1):
        p, s, z = quantizer.qbits_block_quant(part)
        packed.append(p)
        scales.append(s)
        zeros.append(z)
    bits = config.bits
    _initializer(builder, ir.serde.serialize_tensor(ir.Tensor(np.concatenate(packed), name=f"{weight}_Q{bits}")))
    _initializer(builder, ir.serde.serialize_tensor(ir.Tensor(np.concatenate(scales), name=f"{weight}_scales")))
    inputs = [node.inputs[0], f"{weight}_Q{bits}", f"{weight}_scales"]
    if not config.is_symmetric:
        _initializer(builder, onnx.numpy_helper.from_array(np.concatenate(zeros), f"{weight}_zero_points"))
        inputs.append(f"{weight}_zero_points")
    rows, cols = source.shape
    attributes: dict[str, int] = {"K": int(rows), "N": int(cols), "bits": bits, "block_size": config.block_size}
    if config.accuracy_level:
        attributes["accuracy_level"] = config.accuracy_level
    return _replace(builder, node, "MatMulNBits", f"{node.name}_Q{bits}", inputs, attributes, weight)


def _quantize_gather(builder: Any, node: Any, source: Any, quantizer: Any) -> Any:
    """``node`` (Gather, table ``source``) as onnxruntime's GatherBlockQuantized, row block by row block."""
    import numpy as np
    import onnx
    from onnx import TensorProto

    config = quantizer.config
    data = node.inputs[0].name
    axis = config.quant_axes.get("Gather", 1) % 2
    if axis != 1 or source.shape[1] % 2:
        return None  # slicing by rows is exact only for the row-wise blocks of an even row length
    quantized, scales, zeros = [], [], []
    for part in _float32_slices(source, axis=0):
        q, s, z = quantizer.quantize_ndarray(part, axis, config.block_size, config.is_symmetric)
        quantized.append(q)
        scales.append(s)
        zeros.append(z)
    qtype = TensorProto.INT4 if config.is_symmetric else TensorProto.UINT4
    shape = list(source.shape)
    _initializer(
        builder, onnx.helper.make_tensor(f"{data}_Q4", qtype, shape, np.concatenate(quantized).tobytes(), True)
    )
    _initializer(builder, onnx.numpy_helper.from_array(np.concatenate(scales), f"{data}_scales"))
    inputs = [f"{data}_Q4", node.inputs[1], f"{data}_scales"]
    if not config.is_symmetric:
        zp = np.concatenate(zeros).tobytes()
        _initializer(
            builder, onnx.helper.make_tensor(f"{data}_zero_points", qtype, list(np.concatenate(scales).shape), zp, True)
        )
        inputs.append(f"{data}_zero_points")
    gather_axis = node.attributes["axis"].as_int() if "axis" in node.attributes else 0
    attributes = {"block_size": config.block_size, "gather_axis": gather_axis, "quantize_axis": axis}
    return _replace(builder, node, "GatherBlockQuantized", f"{node.name}_Q4", inputs, attributes, data)


def _replace(
    builder: Any, node: Any, op: str, name: str, inputs: list[Any], attributes: dict[str, int], weight: str
) -> Any:
    """``node`` replaced in the graph by a com.microsoft ``op`` node ``name`` with the same output value name; the
    float weight initializer removed."""
    import onnx_ir as ir

    graph = builder.model.graph
    new = ir.node(
        op,
        inputs=[builder.make_value(n) if isinstance(n, str) else n for n in inputs],
        attributes=attributes,
        domain="com.microsoft",
        name=name,
    )
    old_output = node.outputs[0]
    ir.convenience.replace_nodes_and_values(graph, node, [node], [new], [old_output], [new.outputs[0]])
    builder.values[old_output.name] = new.outputs[0]
    value = graph.initializers.pop(weight, None)
    if value is not None:
        value.const_value = None
    builder.values.pop(weight, None)
    return new


def quantize_pending(builder: Any, state: LowMemory, *, everything: bool = False) -> None:
    """The float MatMul/Gather weights now in the graph quantised and dropped: those with a recorded source, or
    (``everything``) also the rest, read whole from their initializer."""
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantizer

    quantizer = DefaultWeightOnlyQuantizer(_quant_config(builder))
    ops = set(builder.quant_attrs["op_types_to_quantize"])
    excluded = set(builder.quant_attrs["nodes_to_exclude"])
    for node in list(builder.model.graph):
        if node.op_type not in ops or node.domain not in ("", "ai.onnx") or node.name in excluded:
            continue
        weight = node.inputs[1 if node.op_type == "MatMul" else 0]
        if weight is None or not weight.is_initializer() or weight.const_value is None:
            continue
        source = state.sources.pop(weight.name, None)
        if source is None:
            if not everything:
                continue
            source = torch.from_numpy(weight.const_value.numpy())
        if source.dim() != 2 or not source.is_floating_point():
            continue
        if node.op_type == "MatMul":
            _quantize_matmul(builder, node, source, quantizer)
        else:
            _quantize_gather(builder, node, source, quantizer)


def finish(builder: Any, state: LowMemory) -> Any:
    """What ``MatMulNBitsQuantizer.process`` does besides the nodes, on the graph: the rest quantised, the
    com.microsoft opset, opset 21 / IR 10 for int4 Gather tables, and unused initializers removed."""
    quantize_pending(builder, state, everything=True)
    model = builder.model
    model.opset_imports["com.microsoft"] = 1
    if "Gather" in builder.quant_attrs["op_types_to_quantize"]:
        if model.opset_imports.get("", 21) < 21:
            model.opset_imports[""] = 21
        model.ir_version = max(model.ir_version or 10, 10)
    graph = model.graph
    for name, value in list(graph.initializers.items()):
        if not value.uses() and not value.is_graph_output():
            graph.initializers.pop(name)
    return model


def patch(model_class: Any, state: LowMemory) -> None:
    """The builder's ``Model`` methods wrapped as the module docstring says."""
    import torch

    originals = {
        name: getattr(model_class, name)
        for name in ("load_weights", "make_initializer", "make_embedding", "make_layer", "make_lm_head", "to_nbits")
    }

    def load_weights(self: Any, input_path: str) -> Any:
        if str(input_path).endswith(".gguf") or self.quant_type is not None or not supported(self):
            return originals["load_weights"](self, input_path)
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(self.model_name_or_path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        state.shards = Shards(Path(self.model_name_or_path))
        state.names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
        if getattr(config, "tie_word_embeddings", False):
            state.tied["lm_head.weight"] = "model.embed_tokens.weight"
        # The small modules outside the layers (the final norm) are read now and kept.
        big = {id(model.get_input_embeddings()), id(model.get_output_embeddings())}
        big |= {id(layer) for layer in model.model.layers}
        for name, module in model.named_modules():
            if id(module) in big or any(id(m) in big for m in _ancestors(model, name)):
                continue
            own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.is_meta]
            if own:
                tensors = state.shards.read([state._file_name(f"{name}.{n}") for n, _ in own])
                for n, _ in own:
                    _set(module, n, tensors[state._file_name(f"{name}.{n}")])
        state.progress.total(self.num_layers + 3)
        return model

    def make_initializer(self: Any, tensor: Any, /, name: str, *, to: Any = None, raw: bool = False) -> None:
        originals["make_initializer"](self, tensor, name, to=to, raw=raw)
        if state.shards is not None and to is not None and not raw and isinstance(tensor, torch.Tensor):
            state.sources[name] = tensor

    def make_embedding(self: Any, embedding: Any) -> None:
        if state.shards is None:
            return originals["make_embedding"](self, embedding)
        module = self.weights.get_input_embeddings()
        with state.loaded(module):
            originals["make_embedding"](self, module.weight)
            quantize_pending(self, state)
        state.progress.step("embedding")

    def make_layer(self: Any, layer_id: int, layer: Any) -> None:
        if state.shards is None:
            return originals["make_layer"](self, layer_id, layer)
        with state.loaded(layer):
            originals["make_layer"](self, layer_id, layer)
            quantize_pending(self, state)
        state.progress.step(f"layer {layer_id + 1}/{self.num_layers}")

    def make_lm_head(self: Any, lm_head: Any) -> None:
        if state.shards is None:
            return originals["make_lm_head"](self, lm_head)
        with state.loaded(lm_head):
            originals["make_lm_head"](self, lm_head)
            quantize_pending(self, state)
        state.progress.step("output layer")

    def to_nbits(self: Any) -> Any:
        if state.shards is None:
            return originals["to_nbits"](self)
        return finish(self, state)

    for name, function in {
        "load_weights": load_weights,
        "make_initializer": make_initializer,
        "make_embedding": make_embedding,
        "make_layer": make_layer,
        "make_lm_head": make_lm_head,
        "to_nbits": to_nbits,
    }.items():
        setattr(model_class, name, function)


def _ancestors(model: Any, name: str) -> list[Any]:
    parts = name.split(".") if name else []
    out, module = [], model
    for part in parts[:-1]:
        module = getattr(module, part)
        out.append(module)
    return out


def _quiet() -> IO[str]:
    """The parent's stdout kept for progress lines; everything else written to stdout goes to stderr, and the
    libraries' progress bars, warnings and info logs are off."""
    progress = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    return progress


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rag.models.onnx_build")
    parser.add_argument("-i", "--input", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("-p", "--precision", default="int4")
    parser.add_argument("-e", "--execution_provider", default="cpu")
    parser.add_argument("-c", "--cache_dir", required=True)
    parser.add_argument("--extra_options", nargs="*", default=[])
    args = parser.parse_args(argv)
    state = LowMemory(Progress(_quiet()))

    import onnxruntime_genai.models.builder as builder

    patch(sys.modules["builders.base"].Model, state)
    extra = builder.parse_extra_options(
        None, args.input, args.output, args.precision, args.execution_provider, args.cache_dir, args.extra_options
    )
    builder.create_model(
        None, args.input, args.output, args.precision, args.execution_provider, args.cache_dir, **extra
    )
    state.progress.step("saved")


if __name__ == "__main__":
    main()
