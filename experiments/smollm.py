"""The smollm experiment config: the one shipped with the package (lpzero_jax/configs/smollm.py,
where its fields are documented). `python -m lpzero_jax.main --config=experiments/smollm.py` from the
repository and `lpzero --config=smollm` from any directory run the same job (needs the `smollm` extra).
"""

from lpzero_jax.configs.smollm import get_config  # noqa: F401
