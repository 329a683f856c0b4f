"""Hand-crafted zero-cost proxies, one file each, registered in PROXIES by importing this package."""

from lpzero_jax.proxies.base import PROXIES, ArchContext, register_proxy
from lpzero_jax.proxies import attention_confidence, genome, params  # noqa: F401

__all__ = ["PROXIES", "ArchContext", "register_proxy"]
