"""Capacity rules: the instance type exists, tensor parallelism fits its GPUs, and the weights
(parameters x bytes per parameter for the dtype or quantization) plus headroom fit in memory.

Sizes are in GiB (2**30 bytes) throughout, as SageMaker's GPU memory figures are."""

from __future__ import annotations

from collections.abc import Iterator

from modelops.config import catalog
from modelops.config.catalog import InstanceType
from modelops.config.findings import Finding
from modelops.config.model import ModelConfig
from modelops.policy.context import CheckContext, reads

UNKNOWN_TYPE = "{type} is not a SageMaker instance type{suggestion}"
UNKNOWN_TYPE_HINT = "the instance types modelops knows are in modelops/config/data/instance_types.json"
TP_NO_GPU = "tensor_parallel_degree {tp} needs GPUs, and {type} has none"
TP_TOO_BIG = "tensor_parallel_degree {tp} is more than the {gpus} GPUs of {type}"
TP_NOT_DIVIDING = "tensor_parallel_degree {tp} does not divide the {gpus} GPUs of {type}"
TP_HINT = "use a degree that divides the GPU count ({choices})"
GPU_MEMORY = ("weights need {weights:.1f} GiB ({params} parameters x {bpp:g} bytes, {precision}) + {headroom:.0%} "
              "headroom = {needed:.1f} GiB, more than the {available:.1f} GiB of GPU memory {where}")
GPU_MEMORY_HINT = "quantize (awq, fp8...), use a larger instance, or raise tensor_parallel_degree"
MEMORY = ("weights need {weights:.1f} GiB ({params} parameters x {bpp:g} bytes, {precision}) + {headroom:.0%} "
          "headroom = {needed:.1f} GiB, more than the {available:.1f} GiB of memory of {type}")
GPU_REQUIRED = "rolling_batch {engine} needs GPUs, and {type} has none"

#: bytes per parameter by quantization, then by dtype
_QUANT_BYTES = {"awq": 0.5, "gptq": 0.5, "int4": 0.5, "bitsandbytes4": 0.5, "fp8": 1.0, "int8": 1.0, "bitsandbytes8": 1.0}
_DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0}
_GPU_ENGINES = {"vllm", "lmi-dist", "trtllm"}


def bytes_per_parameter(model: ModelConfig, gpu: bool) -> tuple[float, str]:
    """(bytes, what decided it) for the model's weights as served."""
    serving = model.container.serving
    if serving.quantize:
        return _QUANT_BYTES[serving.quantize], f"{serving.quantize} quantization"
    if serving.dtype:
        return _DTYPE_BYTES[serving.dtype], serving.dtype
    # Without a dtype: GPUs serve half precision (LMI's default), CPUs full precision.
    return (2.0, "fp16 default on GPU") if gpu else (4.0, "fp32 default on CPU")


def _human(n: int) -> str:
    for unit, size in (("e12", 10**12), ("e9", 10**9), ("e6", 10**6)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _instance_places(model: ModelConfig) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every instance type the model names, with where: the base and each override."""
    yield model.resources.instance_type, ("spec", "resources", "instance_type")
    for env, over in model.environments.items():
        if over.resources.instance_type:
            yield over.resources.instance_type, ("spec", "environments", env, "resources", "instance_type")


@reads(("spec", "resources", "instance_type"), ("spec", "environments", "*", "resources", "instance_type"),
       ("spec", "container", "serving"), ("spec", "artifacts"))
def check_capacity(ctx: CheckContext) -> Iterator[Finding | None]:
    headroom = ctx.policy.capacity_headroom
    for model in ctx.models:
        seen: set[str] = set()
        for type_name, at in _instance_places(model):
            if type_name in seen:
                continue
            seen.add(type_name)
            itype = catalog.instance_type(type_name)
            if itype is None:
                close = catalog.closest_instance_type(type_name)
                yield ctx.at(model, "capacity.unknown-instance-type", at, UNKNOWN_TYPE.format(
                    type=type_name, suggestion=f" (did you mean '{close}'?)" if close else ""), UNKNOWN_TYPE_HINT)
                continue
            yield from _check_instance(ctx, model, itype, at, headroom)


def _check_instance(ctx: CheckContext, model: ModelConfig, itype: InstanceType, at: tuple[str | int, ...],
                    headroom: float) -> Iterator[Finding | None]:
    serving = model.container.serving
    tp_at = ("spec", "container", "serving", "tensor_parallel_degree")
    tp = serving.tensor_parallel_degree or 1
    where = f" (on {itype.name})"
    if serving.rolling_batch in _GPU_ENGINES and itype.gpus == 0:
        yield ctx.at(model, "capacity.gpu-required", at, GPU_REQUIRED.format(engine=serving.rolling_batch,
                                                                             type=itype.name))
        return
    if tp > 1:
        choices = ", ".join(str(d) for d in range(1, itype.gpus + 1) if itype.gpus % d == 0) or "none"
        if itype.gpus == 0:
            yield ctx.at(model, "capacity.tensor-parallel", tp_at, TP_NO_GPU.format(tp=tp, type=itype.name) + where)
            return
        if tp > itype.gpus:
            yield ctx.at(model, "capacity.tensor-parallel", tp_at,
                         TP_TOO_BIG.format(tp=tp, gpus=itype.gpus, type=itype.name), TP_HINT.format(choices=choices))
            return
        if itype.gpus % tp:
            yield ctx.at(model, "capacity.tensor-parallel", tp_at,
                         TP_NOT_DIVIDING.format(tp=tp, gpus=itype.gpus, type=itype.name), TP_HINT.format(choices=choices))
            return
    params = model.parameter_count
    if not params:
        return
    gpu = itype.gpus > 0
    bpp, precision = bytes_per_parameter(model, gpu)
    weights = params * bpp / 2**30
    needed = weights * (1 + headroom)
    if gpu:
        used = tp if serving.tensor_parallel_degree else itype.gpus
        available = itype.memory_per_gpu_gib * used
        if needed > available:
            what = (f"of {used} x {itype.memory_per_gpu_gib:.0f} GiB GPUs on {itype.name}"
                    if used > 1 else f"of the one {itype.memory_per_gpu_gib:.0f} GiB GPU on {itype.name}")
            yield ctx.at(model, "capacity.gpu-memory", at, GPU_MEMORY.format(
                weights=weights, params=_human(params), bpp=bpp, precision=precision, headroom=headroom,
                needed=needed, available=available, where=what), GPU_MEMORY_HINT)
    elif needed > itype.memory_gib:
        yield ctx.at(model, "capacity.memory", at, MEMORY.format(
            weights=weights, params=_human(params), bpp=bpp, precision=precision, headroom=headroom,
            needed=needed, available=float(itype.memory_gib), type=itype.name), "use an instance with more memory")
