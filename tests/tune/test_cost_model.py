"""XGBoost rank model on synthetic costs (a known function of the knobs plus noise): it ranks
held-out configs far better than chance, transfers to another task of the same template, and
simulated annealing + the batch pick on it returns fast, unmeasured, distinct configs."""

from __future__ import annotations

import random

import numpy as np

from edgec.kernels.gemv.tuning import gemv_space
from edgec.tune.cost_model import CostModel, features, spearman
from edgec.tune.search import anneal, pick_batch


def _task(k: int, n: int) -> dict:
    return {"kernel": "gemv", "shapes": [[1, k], [k, n]], "dtype": "float32", "target": "x86_64"}


def _synthetic_cost(kn: dict, rng: np.random.Generator) -> float:
    """Latency-bound with few FMA chains, spills past 16 registers, a small unroll gain."""
    chains = kn["nv"] * kn["ka"]
    live = chains + kn["nv"] + 1
    c = 1.0 / min(chains, 8) + 0.4 * max(0, live - 16) + (0.05 if kn["ku"] == 1 else 0.0)
    return c * float(rng.uniform(0.97, 1.03))


def _data(task: dict, seed: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    sp = gemv_space(task["shapes"][1][0], task["shapes"][1][1], 8)
    rng = np.random.default_rng(seed)
    idx = list(range(len(sp)))
    x = np.stack([features(task, sp.knobs(i)) for i in idx])
    y = np.array([_synthetic_cost(sp.knobs(i), rng) for i in idx])
    return idx, x, y


def test_rank_model_beats_random_and_transfers() -> None:
    a = _task(1024, 1024)
    idx, x, y = _data(a, 0)
    order = np.random.default_rng(1).permutation(len(idx))
    train, test = order[: len(idx) * 6 // 10], order[len(idx) * 6 // 10:]
    m = CostModel()
    assert not m.fit()  # no data yet
    for i in train:
        m.add("a", x[i], float(y[i]))
    assert m.fit()
    rho = spearman(m.predict(x[test]), -y[test])
    chance = np.mean([spearman(np.random.default_rng(s).standard_normal(len(test)), -y[test]) for s in range(20)])
    assert rho > 0.6 and rho > chance + 0.4, (rho, chance)
    b = _task(512, 256)  # another task of the template, never measured: transfer
    _, xb, yb = _data(b, 2)
    assert spearman(m.predict(xb), -yb) > 0.5


def test_anneal_and_pick() -> None:
    a = _task(1024, 1024)
    sp = gemv_space(1024, 1024, 8)
    idx, x, y = _data(a, 0)
    m = CostModel()
    rng = random.Random(0)
    seen = rng.sample(idx, 16)
    for i in seen:
        m.add("a", x[i], float(y[i]))
    assert m.fit()
    score = lambda ids: m.predict(np.stack([x[i] for i in ids]))
    ranked = anneal(sp, score, set(seen), keep=24, rng=rng)
    assert ranked and all(i not in seen for _, i in ranked)
    batch = pick_batch(sp, ranked, set(seen), 8, rng, epsilon=0.05)
    assert len(batch) == len(set(batch)) == 8 and not set(batch) & set(seen)
    # the model-guided batch is much faster on average than the space
    assert np.mean(y[batch]) < 0.7 * np.mean(y), (np.mean(y[batch]), np.mean(y))
    # without a model the pick is random but still valid and distinct
    rnd = pick_batch(sp, [], set(seen), 8, rng)
    assert len(set(rnd)) == 8 and not set(rnd) & set(seen)
