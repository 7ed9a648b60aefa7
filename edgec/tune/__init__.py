"""AutoTVM-style tuning (see DESIGN.md): tasks, config spaces, measurement, an XGBoost rank
cost model, simulated-annealing search, a JSON-lines log, and a pool of devices."""
