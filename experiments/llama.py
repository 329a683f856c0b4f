"""The llama experiment config: the one shipped with the package (lpzero_jax/configs/llama.py, where
its fields are documented). `python -m lpzero_jax.main --config=experiments/llama.py` from the
repository and `lpzero --config=llama` from any directory run the same job.
"""

from lpzero_jax.configs.llama import get_config  # noqa: F401
