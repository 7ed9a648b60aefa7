"""Search on the cost model: simulated annealing over the config space (parallel chains, one
knob changed per step, early stop when the best candidates stop changing), then an epsilon-
greedy batch pick with diversity: greedy on predicted score plus a bonus for knob values not
yet in the batch (a submodular coverage term, as AutoTVM), and a random config with
probability epsilon per slot."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np

from edgec.tune.space import ConfigSpace

Score = Callable[[list[int]], np.ndarray]


def anneal(space: ConfigSpace, score: Score, exclude: set[int], keep: int, rng: random.Random,
           chains: int = 8, iters: int = 200, early_stop: int = 40) -> list[tuple[float, int]]:
    """The `keep` best unmeasured configs visited, as (score, index), best first."""
    cache: dict[int, float] = {}

    def scores(idx: list[int]) -> list[float]:
        new = sorted({i for i in idx if i not in cache})
        if new:
            for i, s in zip(new, score(new)):
                cache[i] = float(s)
        return [cache[i] for i in idx]

    points = [rng.randrange(len(space)) for _ in range(min(chains, len(space)))]
    cur = scores(points)
    spread = float(np.std(list(cache.values()))) or 1.0
    best_set: frozenset = frozenset()
    still = 0
    for it in range(iters):
        temp = spread * (1.0 - it / iters)
        cand = [space.neighbor(p, rng) for p in points]
        cs = scores(cand)
        for k in range(len(points)):
            d = cs[k] - cur[k]
            if d >= 0 or (temp > 0 and rng.random() < math.exp(d / temp)):
                points[k], cur[k] = cand[k], cs[k]
        top = frozenset(sorted((i for i in cache if i not in exclude), key=lambda i: -cache[i])[:keep])
        still = still + 1 if top == best_set else 0
        best_set = top
        if still >= early_stop:
            break
    ranked = sorted(((s, i) for i, s in cache.items() if i not in exclude), key=lambda t: (-t[0], t[1]))
    return ranked[:keep]


def pick_batch(space: ConfigSpace, ranked: list[tuple[float, int]], exclude: set[int], size: int,
               rng: random.Random, epsilon: float = 0.05, diversity: float = 0.5) -> list[int]:
    """`size` unmeasured configs: mostly the model's best with a coverage bonus, some random."""
    free = [i for i in range(len(space)) if i not in exclude]
    size = min(size, len(free))
    picked: list[int] = []
    if ranked:
        s = np.array([sc for sc, _ in ranked])
        norm = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else np.zeros_like(s)
        pool = [(float(n), i) for n, (_, i) in zip(norm, ranked)]
    else:
        pool = []
    covered: list[set] = [set() for _ in space.names]
    while len(picked) < size:
        chosen = None
        if pool and rng.random() >= epsilon:
            def gain(t: tuple[float, int]) -> float:
                cfg = space.configs[t[1]]
                new = sum(v not in covered[k] for k, v in enumerate(cfg)) / len(cfg)
                return t[0] + diversity * new
            best = max(pool, key=gain)
            pool.remove(best)
            chosen = best[1]
        else:
            rest = [i for i in free if i not in picked]
            chosen = rng.choice(rest)
            pool = [t for t in pool if t[1] != chosen]
        if chosen in picked:
            continue
        picked.append(chosen)
        for k, v in enumerate(space.configs[chosen]):
            covered[k].add(v)
    return picked
