"""The flexibert experiment config: the one shipped with the package (lpzero_jax/configs/flexibert.py, where
its fields are documented). `python -m lpzero_jax.main --config=experiments/flexibert.py` from the
repository and `lpzero --config=flexibert` from any directory run the same job.
"""

from lpzero_jax.configs.flexibert import get_config  # noqa: F401
