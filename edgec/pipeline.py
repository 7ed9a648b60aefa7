"""The pass pipeline as data: the generic passes every model goes through once, then the target
passes run per device on a copy of the graph (they depend on vector width, registers, the build
options and tuned schedules). Each target pass is a row: its name, a factory that makes the pass
for one (profile, options, overrides), and the condition under which it runs. `--dump-ir` prints
the graph after every pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgec.ir import Graph, format_graph, verify
from edgec.kernels.conv_direct.deconv import prepare_deconv
from edgec.kernels.conv_direct.pack import fuse_residual_add, prepare_direct_conv
from edgec.kernels.depthwise.pool import prepare_max_pool
from edgec.kernels.gemv.pack import prepare_gemv
from edgec.kernels.int8.prepare import prepare_qconv
from edgec.kernels.int8.prepare_qgemm import integer_products
from edgec.kernels.rnn.pack import pack_rnn
from edgec.kernels.specs import check_attrs
from edgec.kernels.window_gemm.pack import prepare_window_gemm
from edgec.kernels.winograd.pack import prepare_winograd
from edgec.optimize.activation_patterns import recognize_activations
from edgec.optimize.elementwise_fusion import fuse_elementwise
from edgec.optimize.fold_cast import fold_cast_into_pad
from edgec.optimize.fp16_compute import compute_fp16
from edgec.optimize.memory_plan import alias_concat_inputs
from edgec.optimize.passes import (
    conv_as_dense,
    dead_node_removal,
    fold_pad_into_conv,
    fold_scale_into_conv,
    fuse_activation,
    fuse_bias,
    materialize_outputs,
)
from edgec.optimize.qdq import fold_qdq
from edgec.optimize.quantized_lstm import recurrent_dot_pass
from edgec.optimize.weight_quant import exact_int8_weights, quantize_weights
from edgec.options import BuildOptions
from edgec.quantize.fp16 import FP16_CONSUMERS, store_weights_fp16
from edgec.sparsity.rnn import sparsify_rnn
from edgec.sparsity.transform import sparsify_dense
from edgec.targets import TargetProfile
from edgec.tune.keys import Overrides

Pass = Callable[[Graph], Graph]

GENERIC_PASSES: list[tuple[str, Pass]] = [
    ("fold-qdq", fold_qdq),  # first: it looks up constants a converter copied (Gemm's B)
    ("dead-node-removal", dead_node_removal),
    # written-out HardSwish/HardSigmoid/Swish: before fold-scale-into-conv takes "+ 3" as a bias
    ("recognize-activations", recognize_activations),
    ("fold-pad-into-conv", fold_pad_into_conv),
    ("fold-scale-into-conv", fold_scale_into_conv),
    ("conv-as-dense", conv_as_dense),  # after BN folding, before bias/activation fusion
    ("fuse-bias", fuse_bias),
    ("fuse-activation", fuse_activation),
    ("materialize-outputs", materialize_outputs),
    ("dead-node-removal", dead_node_removal),
]


@dataclass(frozen=True)
class PassContext:
    """What a target pass may depend on."""

    profile: TargetProfile
    options: BuildOptions
    overrides: Overrides


@dataclass(frozen=True)
class TargetPass:
    name: str
    make: Callable[[PassContext], Pass]
    when: Callable[[PassContext], bool] = lambda cx: True


def _const(p: Pass) -> Callable[[PassContext], Pass]:
    return lambda cx: p


def _fp16(cx: PassContext) -> bool:
    """`--precision fp16` on a target with fp16 arithmetic."""
    return cx.options.compute == "fp16" and cx.profile.fp16_arith


TARGET_PASSES: list[TargetPass] = [
    TargetPass("pack-rnn", _const(pack_rnn)),  # first: the RNN passes below read the packed layout
    # ConvInteger / MatMulInteger on byte dots, or exactly on the float kernels: before the
    # float conv / GEMM passes, which then take those float nodes
    TargetPass("integer-products", lambda cx: integer_products(cx.profile)),
    TargetPass("sparsify-dense", lambda cx: sparsify_dense(cx.profile, cx.options.sparse)),
    TargetPass("sparsify-rnn", lambda cx: sparsify_rnn(cx.profile, cx.options.sparse)),
    # `--precision fp16`: float tensors of the listed ops become float16 before the families pack
    TargetPass("compute-fp16", _const(compute_fp16), when=_fp16),
    TargetPass("prepare-winograd", lambda cx: prepare_winograd(cx.profile, cx.options.threads, cx.options.fast_math)),
    TargetPass("prepare-window-gemm", lambda cx: prepare_window_gemm(cx.profile)),  # before the direct convs
    TargetPass("prepare-direct-conv", lambda cx: prepare_direct_conv(cx.profile, cx.overrides, cx.options)),
    TargetPass("prepare-deconv", lambda cx: prepare_deconv(cx.profile)),
    TargetPass("prepare-max-pool", lambda cx: prepare_max_pool(cx.profile)),
    TargetPass("prepare-qconv", lambda cx: prepare_qconv(cx.profile)),
    TargetPass("prepare-gemv", lambda cx: prepare_gemv(cx.profile, cx.overrides, cx.options)),
    # `--weights int8|fp16`: after sparsify-rnn and prepare-gemv have packed the weights
    TargetPass("exact-int8-weights", _const(exact_int8_weights), when=lambda cx: cx.options.weights == "fp32"),
    TargetPass("quantize-weights", lambda cx: quantize_weights(cx.profile, cx.options.weights),
               when=lambda cx: cx.options.weights != "fp32"),
    TargetPass("gemv-weights-fp16", lambda cx: quantize_weights(cx.profile, "fp16", rnn=False), when=_fp16),
    TargetPass("recurrent-dot", lambda cx: recurrent_dot_pass(cx.profile)),  # after the int8 weights
    TargetPass("fold-cast-into-pad", _const(fold_cast_into_pad)),  # after the conv passes add their Pads
    TargetPass("fuse-residual-add", _const(fuse_residual_add)),
    TargetPass("fuse-elementwise", _const(fuse_elementwise)),
    # `--quantize fp16`: after every weight is packed, before the last clean-up
    TargetPass("store-weights-fp16", lambda cx: store_weights_fp16(FP16_CONSUMERS),
               when=lambda cx: cx.options.precision == "fp16"),
    TargetPass("dead-node-removal", _const(dead_node_removal)),
    TargetPass("alias-concat", _const(alias_concat_inputs)),
]


def target_passes(profile: TargetProfile, options: BuildOptions | None = None,
                  overrides: Overrides | None = None) -> list[tuple[str, Pass]]:
    """The target passes for one device and build. `overrides` (task key -> knobs, from a
    tuning log) replace the default schedules."""
    cx = PassContext(profile, options or BuildOptions(), dict(overrides or {}))
    return [(p.name, p.make(cx)) for p in TARGET_PASSES if p.when(cx)]


def run_pipeline(g: Graph, passes: list[tuple[str, Pass]] | None = None,
                 dump: Callable[[str], None] | None = None, dump_initial: bool = True) -> Graph:
    """Run `passes` (default: the generic ones), verifying the graph after each."""
    if dump and dump_initial:
        dump(f"== after import ==\n{format_graph(g)}")
    for name, fn in passes if passes is not None else GENERIC_PASSES:
        g = fn(g)
        verify(g)
        check_attrs(g.nodes)
        if dump:
            dump(f"== after {name} ==\n{format_graph(g)}")
    return g
