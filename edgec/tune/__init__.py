"""AutoTVM-style tuning (see docs/tuning-log.md): tasks, config spaces, measurement, an XGBoost rank
cost model, simulated-annealing search, a JSON-lines log, and a pool of devices."""
