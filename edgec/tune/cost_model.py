"""XGBoost rank cost model (AutoTVM): gradient-boosted trees with the pairwise rank objective on
knob values plus simple loop-structure features (tile sizes, accumulator/register counts,
spills, loads and bytes per FMA, lanes wasted in tails, problem sizes), all as log2(x + 1).
Training data is kept per kernel template across tasks (one rank group per task), so a model
trained on earlier tasks ranks a new task's configs from the start (transfer)."""

from __future__ import annotations

import math

import numpy as np

from edgec.errors import EdgecError
from edgec.kernels.conv_direct.tuning import OCVEC, ConvTaskShapes
from edgec.kernels.gemv.tuning import GemvTaskShapes
from edgec.tune.tasks import target_info


def _xgb():  # noqa: ANN202
    try:
        import xgboost
    except ImportError:
        raise EdgecError("edgec tune needs xgboost: pip install 'edgec[tune]' (or pip install xgboost)") from None
    return xgboost


def _l(x: float) -> float:
    return math.log2(max(0.0, float(x)) + 1.0)


def _gemv_features(task: dict, knobs: dict, lanes: int, regs: int) -> list[float]:
    k, n = GemvTaskShapes.of(task)
    nv, ku, ka = knobs["nv"], knobs["ku"], knobs["ka"]
    nb = nv * lanes
    blocks = -(-n // nb)
    live = nv * ka + nv + 1  # accumulators + weight vectors + the broadcast
    return [nv, ku, ka, nb, nv * ka, live, max(0, live - regs), (nv + 1) / nv, 4 * (nv + 1) / nv,
            (blocks * nb - n) / n, blocks, k % ku, k, n, k * n * 4 / 1024, 0, 0, 0]


def _conv_features(task: dict, knobs: dict, lanes: int, regs: int) -> list[float]:
    c_ = ConvTaskShapes.of(task)
    (_, c, h, w), (m, cg, kh, kw), (sh, sw), (pt, pl, pb, pr) = c_.x, c_.w, c_.strides, c_.pads
    ow = (w + pl + pr - kw) // sw + 1
    oh = (h + pt + pb - kh) // sh + 1
    nrv = knobs["nrv"]
    if knobs["variant"] == OCVEC:
        mp = knobs["mp"]
        accs, live = mp * nrv, mp * nrv + nrv + 1
        tile_m, tile_px = nrv * lanes, mp
        waste = (-(-m // tile_m) * tile_m - m) / m + (-(-(oh * ow) // mp) * mp - oh * ow) / (oh * ow)
        loads = (nrv + mp) / (mp * nrv)
        var, mr = 1, 0
    else:
        mr = knobs["mr"]
        flat = kh == kw == 1 and sh == sw == 1
        cols = oh * ow if flat else ow
        accs, live = mr * nrv, mr * nrv + nrv + 1
        tile_m, tile_px = mr, nrv * lanes
        waste = (-(-m // mr) * mr - m) / m + (-(-cols // (nrv * lanes)) * nrv * lanes - cols) / cols
        loads = (nrv + mr) / (mr * nrv)
        var, mp = 0, 0
    return [var, mr, nrv, mp, accs, live, max(0, live - regs), loads, 4 * loads, waste, tile_m, tile_px,
            c, m, oh * ow, kh * kw, sh, cg]


def features(task: dict, knobs: dict) -> np.ndarray:
    lanes, regs = target_info(task)
    raw = (_gemv_features if task["kernel"] == "gemv" else _conv_features)(task, knobs, lanes, regs)
    return np.array([_l(v) for v in raw], np.float32)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=float)
        for v in np.unique(x):  # average ties
            idx = x == v
            r[idx] = r[idx].mean()
        return r
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


class CostModel:
    """Pairwise-rank XGBoost over (task, knobs); higher score = predicted faster."""

    params = {"objective": "rank:pairwise", "max_depth": 3, "eta": 0.3, "min_child_weight": 1,
              "subsample": 1.0, "nthread": 1, "verbosity": 0, "seed": 0}

    def __init__(self, rounds: int = 40):
        self.rounds = rounds
        self.data: dict[str, list[tuple[np.ndarray, float | None]]] = {}  # task key -> samples
        self.booster = None

    def add(self, key: str, x: np.ndarray, cost: float | None) -> None:
        self.data.setdefault(key, []).append((x, cost))

    @property
    def samples(self) -> int:
        return sum(len(v) for v in self.data.values())

    def fit(self) -> bool:
        """Train on every task's data (a rank group per task); labels are best/cost in (0, 1],
        0 for failed configs. Returns False while there is too little data."""
        xgb = _xgb()
        xs, ys, groups = [], [], []
        for key in sorted(self.data):
            rows = self.data[key]
            good = [c for _, c in rows if c is not None]
            if len(rows) < 2 or not good:
                continue
            best = min(good)
            xs += [x for x, _ in rows]
            ys += [0.0 if c is None else best / c for _, c in rows]
            groups.append(len(rows))
        if not groups or len(ys) < 4:
            return False
        dm = xgb.DMatrix(np.stack(xs), label=np.array(ys, np.float32))
        dm.set_group(groups)
        self.booster = xgb.train(self.params, dm, num_boost_round=self.rounds)
        return True

    @property
    def trained(self) -> bool:
        return self.booster is not None

    def predict(self, x: np.ndarray) -> np.ndarray:
        xgb = _xgb()
        if self.booster is None:
            return np.zeros(len(x))
        return self.booster.predict(xgb.DMatrix(np.asarray(x, np.float32)))
