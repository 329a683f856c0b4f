"""Hand-crafted zero-cost proxies, one file each, registered in PROXIES by importing this package."""

from lpzero_jax.proxies.base import (DERIVED, FACTORS, PROXIES, ArchContext, Proxy, register_derived,
                                     register_proxy)
from lpzero_jax.proxies import (  # noqa: F401  (each module registers its proxies)
    activation_distance,
    activation_distance_reference,
    attention_confidence,
    eznas,
    fisher,
    genome,
    grad_norm,
    grasp,
    head_importance,
    jacobian_cosine,
    jacobian_cosine_reference,
    logsynflow,
    lpzero_gpt2_reference,
    param_groups,
    params,
    pca,
    snip,
    softmax_confidence,
    synaptic_diversity,
    synaptic_saliency,
    synflow,
    zerolm,
)

__all__ = ["DERIVED", "FACTORS", "PROXIES", "ArchContext", "Proxy", "register_derived", "register_proxy"]
