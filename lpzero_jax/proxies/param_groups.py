"""#Params of one parameter group: LTS's params_summary columns, counted from shapes (no forward pass).

- `params_nonembedding`: attention + FFN + LayerNorm parameters of every block plus the final
  LayerNorm, embeddings and the adaptive softmax excluded (LTS 'nonembedding', the paper's
  Decoder.Params baseline);
- `params_attn`: c_attn and c_proj (kernels and biases) of every block, 4 d^2 + 4 d per layer ('Attn');
- `params_ffn`: the MLP of every block, 2 d f + f + d per layer ('FFN').

The counts come from the family's `param_group_counts`. Families without such groups (FlexiBERT)
give NaN: rank mode leaves the architecture out of the correlation instead of stopping the run
(e.g. with --config.proxies=all).
"""

from lpzero_jax.proxies.base import NO_PASS, SHAPES_ONLY, ArchContext, register_proxy

GROUP_PROXIES = {"params_nonembedding": "nonembedding", "params_attn": "Attn", "params_ffn": "FFN"}


def param_group_count(ctx: ArchContext, group: str) -> float:
    """Number of parameters in `group` of the context's architecture, from shapes only; NaN if the
    family has no parameter groups."""
    ctx.param_shapes  # the timed, shared stage (jax.eval_shape) the counts are read from
    counts = ctx.family.param_group_counts(ctx.model_config)
    if counts is None:
        return float("nan")
    if group not in counts:
        raise KeyError(f"family {ctx.family.name!r} has no parameter group {group!r}; "
                       f"it has {sorted(counts)}")
    return float(counts[group])


def _group_proxy(group: str):
    def proxy(ctx: ArchContext) -> float:
        return param_group_count(ctx, group)

    return proxy


for _name, _group in GROUP_PROXIES.items():
    register_proxy(_name, factors=SHAPES_ONLY, passes=NO_PASS)(_group_proxy(_group))
