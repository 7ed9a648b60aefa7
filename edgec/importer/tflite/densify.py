"""DENSIFY of a sparse constant (TFLite's sparsity format: a traversal order over the dims and
their blocks, each level DENSE with a size or SPARSE_CSR with segments and indices), done at
build time like TFLite's FormatConverter, but level by level with numpy: every stored value's
coordinates are generated in storage order."""

from __future__ import annotations

import numpy as np

from edgec.errors import ModelError

DENSE, SPARSE_CSR = 0, 1
VECTORS = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}


def _vector(kind: int, table: object) -> np.ndarray:
    import tflite

    if kind not in VECTORS or table is None:
        raise ModelError("DENSIFY: a sparse dimension has no segments or indices")
    v = getattr(tflite, VECTORS[kind])()
    v.Init(table.Bytes, table.Pos)  # type: ignore[attr-defined]
    return np.asarray(v.ValuesAsNumpy(), np.int64) if v.ValuesLength() else np.zeros(0, np.int64)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: object) -> np.ndarray:
    sp = sparsity
    order = [int(v) for v in sp.TraversalOrderAsNumpy()]  # type: ignore[attr-defined]
    block_map = [int(v) for v in sp.BlockMapAsNumpy()] if sp.BlockMapLength() else []  # type: ignore[attr-defined]
    n = len(shape)
    if sp.DimMetadataLength() != len(order) or sorted(order) != list(range(len(order))):  # type: ignore[attr-defined]
        raise ModelError("DENSIFY: the traversal order does not match the dimension metadata")
    prev = np.zeros(1, np.int64)  # position within the previous level, per partial path
    coords: list[np.ndarray] = []
    sizes = []
    for level in range(len(order)):
        meta = sp.DimMetadata(level)  # type: ignore[attr-defined]
        if meta.Format() == DENSE:
            d = int(meta.DenseSize())
            sizes.append(d)
            coords = [np.repeat(c, d) for c in coords] + [np.tile(np.arange(d, dtype=np.int64), prev.size)]
            prev = (prev[:, None] * d + np.arange(d, dtype=np.int64)).reshape(-1)
        else:
            segs = _vector(meta.ArraySegmentsType(), meta.ArraySegments())
            idx = _vector(meta.ArrayIndicesType(), meta.ArrayIndices())
            if prev.size and (prev.max() + 1 >= segs.size or segs[-1] > idx.size):
                raise ModelError("DENSIFY: sparse segments out of range")
            starts, counts = segs[prev], segs[prev + 1] - segs[prev]
            if (counts < 0).any():
                raise ModelError("DENSIFY: sparse segments are not increasing")
            pos = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
            coords = [np.repeat(c, counts) for c in coords] + [idx[pos]]
            prev = pos
            sizes.append(None)
    if prev.size != values.size:
        raise ModelError(f"DENSIFY: {values.size} stored values, the sparsity format addresses {prev.size}")
    # original coordinate of dim d = outer index * block size + inner index (for blocked dims)
    dense_coords = [np.zeros(prev.size, np.int64) for _ in range(n)]
    block_sizes = {block_map[k]: sizes[order.index(n + k)] for k in range(len(block_map))}
    for level, dim in enumerate(order):
        if dim < n:
            dense_coords[dim] += coords[level] * block_sizes.get(dim, 1)
        else:
            dense_coords[block_map[dim - n]] += coords[level]
    out = np.zeros(shape, values.dtype)
    for d in range(n):
        if (dense_coords[d] >= shape[d]).any() or (dense_coords[d] < 0).any():
            raise ModelError("DENSIFY: a stored value lies outside the tensor")
    out[tuple(dense_coords)] = values
    return out
