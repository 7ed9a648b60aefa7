"""Config spaces (enumeration, index <-> knobs) and task extraction."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edgec.errors import EdgecError
from edgec.kernels.conv_direct.tuning import conv_space, default_schedule, ocvec_schedule
from edgec.kernels.gemv.tuning import default_gemv_schedule, gemv_space
from edgec.targets import get_profile
from edgec.tune.keys import task_key
from edgec.tune.tasks import extract_tasks, reference_output, task_model
from tests.helpers import run_onnxruntime
from tests.tune.conftest import small_model


def test_gemv_space_enumeration() -> None:
    sp = gemv_space(256, 256, 8)
    assert len(sp) == len(set(sp.configs)) > 40
    for i in range(len(sp)):
        kn = sp.knobs(i)
        assert sp.index(kn) == i
        assert kn["ka"] <= kn["ku"] and kn["ku"] % kn["ka"] == 0
    # N = 12 with 8 lanes: at most 2 column vectors per block.
    assert {gemv_space(64, 12, 8).knobs(i)["nv"] for i in range(len(gemv_space(64, 12, 8)))} == {1, 2}
    with pytest.raises(EdgecError):
        sp.knobs(len(sp))
    with pytest.raises(EdgecError):
        sp.index({"nv": 7, "ku": 1, "ka": 1})
    # find: None for what is not a config here (resume and warm start skip such records)
    assert sp.find(sp.knobs(3)) == 3
    assert sp.find({"nv": 7, "ku": 1, "ka": 1}) is None and sp.find(["nv", 1]) is None


def test_conv_space_variants_and_neighbors() -> None:
    sp = conv_space(64, 1, 8)
    variants = {sp.knobs(i)["variant"] for i in range(len(sp))}
    assert variants == {"row", "ocvec"}
    assert all("mp" not in sp.knobs(i) for i in range(len(sp)) if sp.knobs(i)["variant"] == "row")
    grouped = conv_space(64, 2, 8)  # grouped convs only have the row kernel
    assert {grouped.knobs(i)["variant"] for i in range(len(grouped))} == {"row"}
    rng = random.Random(0)
    for i in range(0, len(sp), 5):
        j = sp.neighbor(i, rng)
        assert 0 <= j < len(sp)
        diff = sum(a != b for a, b in zip(sp.configs[i], sp.configs[j]))
        assert diff >= 1


@pytest.mark.parametrize("device", ["x86_64", "x86_64-avx512", "rpi4", "rpi3"])
def test_spaces_offer_only_tiles_that_fit(device: str) -> None:
    """The tuner measures no tile that spills (tests/asm checks the defaults' hot loops): the
    spaces of a target hold its default schedules and nothing past its registers."""
    p = get_profile(device)
    lanes, regs = p.fp32_lanes, p.vector_registers
    conv = conv_space(64, 1, lanes, p)
    knobs = [conv.knobs(i) for i in range(len(conv))]
    assert 0 < len(conv) < len(conv_space(64, 1, lanes))
    assert all(k["mr"] * k["nrv"] < regs for k in knobs if k["variant"] == "row")
    assert all(k["mp"] * k["nrv"] < regs for k in knobs if k["variant"] == "ocvec")
    d = default_schedule(p, 200)
    assert conv.index({"variant": "row", "mr": d.mr, "nrv": d.nrv}) >= 0
    for pointwise in (False, True):
        o = ocvec_schedule(p, 64, 49, pointwise)
        assert conv.index({"variant": "ocvec", "mp": o["mp"], "nrv": o["nrv"]}) >= 0
    g = default_gemv_schedule(p, 256, 256)
    assert gemv_space(256, 256, lanes, p).index({"nv": g.nv, "ku": g.ku, "ka": g.ka}) >= 0
    if device == "rpi3":  # spilled in tests/asm: ocvec 6x2 and 4x3, Gemv 4x4x2 (the old defaults)
        for k in ({"variant": "ocvec", "mp": 6, "nrv": 2}, {"variant": "ocvec", "mp": 4, "nrv": 3}):
            with pytest.raises(EdgecError):
                conv.index(k)
        with pytest.raises(EdgecError):
            gemv_space(256, 256, lanes, p).index({"nv": 4, "ku": 4, "ka": 2})


def test_extract_tasks_and_task_model() -> None:
    tasks = extract_tasks(small_model(), "host")
    kinds = sorted(t.kernel for t in tasks)
    assert kinds == ["conv2d", "gemv"]
    for t in tasks:
        assert t.key == task_key(t.task) and t.task["target"] == "host"
        sp = t.space()
        assert 0 <= sp.index(t.default_knobs) < len(sp)  # the default heuristic is in the space
        m = task_model(t.task)
        shape = [1, 16] if t.kernel == "gemv" else t.task["shapes"][0]
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(reference_output(t.task, x), run_onnxruntime(m, {"input": x})[0],
                                   rtol=1e-4, atol=1e-4)
    conv = next(t for t in tasks if t.kernel == "conv2d")
    assert conv.task["shapes"][:2] == [[1, 8, 12, 12], [16, 8, 3, 3]] and conv.flops == 2 * 16 * 144 * 72
