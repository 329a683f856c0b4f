"""The GPT-2 proxy LPZero's released code actually evaluates (`measures/lpzero.py`, "current best").

Its genotype {'input_geno': ['weight', 'grad'], 'op_geno': [[3, 10], [11, 3], 0]} decodes, with the
code's UNARY_KEYS / BINARY_KEYS, to INPUT (W, G), TREE (element_wise_pow | l1_norm | softmax |
element_wise_pow), BINARY element_wise_sum: for every linear weight W (every Conv1D for GPT-2) with
gradient G, term = mean|W^2| + mean(softmax(G, dim=0)^2), and the score is the MEAN of the terms
(the code's `convert_to_float` of the list). This is not the Appendix B formula
(|normalize(G)| + log|mean(W)|, our `lpzero_gpt2`); it is computed here exactly, on full tensors,
with softmax over the reference layout's first axis (Conv1D [in, out]: the inputs; nn.Linear
[out, in]: the outputs), to measure which of the two produced the published GPT-2 figure.
"""

import numpy as np
from scipy.special import softmax

from lpzero_jax.proxies.base import GRADIENTS, ArchContext, register_proxy
from lpzero_jax.proxies.common import host_sum, pick


def reference_genotype_term(weight: np.ndarray, grad: np.ndarray, layout: str) -> float:
    """mean|W^2| + mean(softmax(G over the reference's dim 0)^2) for one Flax [in, out] kernel."""
    axis = 0 if layout == "in_out" else 1
    return np.mean(np.abs(weight ** 2)) + np.mean(softmax(grad, axis=axis) ** 2)


@register_proxy("lpzero_gpt2_reference", passes=GRADIENTS)
def lpzero_gpt2_reference(ctx: ArchContext) -> float:
    paths = ctx.linear_paths()
    if not paths:
        return float("nan")
    layouts = [ctx.family.reference_weight_layout(p) for p in paths]
    return host_sum(reference_genotype_term, pick(ctx.params, paths), pick(ctx.grads(), paths),
                    layouts) / len(paths)
