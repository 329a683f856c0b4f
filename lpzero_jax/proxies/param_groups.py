"""Shared helper of the per-group #Params proxies (params_nonembedding, params_attn, params_ffn)."""

from lpzero_jax.proxies.base import ArchContext


def param_group_count(ctx: ArchContext, group: str) -> float:
    """Number of parameters in `group` of the context's architecture, from shapes only.

    NaN if the family defines no `param_group_counts` (FlexiBERT): the group does not exist there.
    """
    counts_fn = getattr(ctx.family, "param_group_counts", None)
    if counts_fn is None:
        return float("nan")
    ctx.param_shapes  # the timed, shared stage (jax.eval_shape) the counts are read from
    counts = counts_fn(ctx.model_config)
    if group not in counts:
        raise KeyError(f"family {ctx.family.name!r} has no parameter group {group!r}; "
                       f"it has {sorted(counts)}")
    return float(counts[group])
