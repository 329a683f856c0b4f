"""The gpt2 experiment config: the one shipped with the package (lpzero_jax/configs/gpt2.py, where
its fields are documented). `python -m lpzero_jax.main --config=experiments/gpt2.py` from the
repository and `lpzero --config=gpt2` from any directory run the same job.
"""

from lpzero_jax.configs.gpt2 import get_config  # noqa: F401
