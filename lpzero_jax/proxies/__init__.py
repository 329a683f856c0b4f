"""Hand-crafted zero-cost proxies, one file each, registered in PROXIES by importing this package."""

from lpzero_jax.proxies.base import PROXIES, ArchContext, register_proxy
from lpzero_jax.proxies import (attention_confidence, genome, params, params_attn,  # noqa: F401
                                params_ffn, params_nonembedding)

__all__ = ["PROXIES", "ArchContext", "register_proxy"]
