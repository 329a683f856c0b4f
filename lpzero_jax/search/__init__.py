"""Search: one evolutionary loop over a search space (space.py, evolution.py), LPZero's proxy
search on it (Algorithm 1, fitness.py, random_search.py) and the LoNAS subnet search (subnets.py)."""
