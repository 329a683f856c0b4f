"""Any genome (searched, published, or typed by hand) as a proxy over an architecture's compact inputs.

The paper's Appendix B proxies are registered by name: lpzero_flexibert, lpzero_gpt2, lpzero_llama.
"""

from __future__ import annotations

from lpzero_jax.expression import PUBLISHED, compile_genome, parse_genome
from lpzero_jax.inputs import stack_inputs
from lpzero_jax.proxies.base import (
    COMPACT_INPUTS,
    FACTORS,
    WEIGHTS_ONLY,
    ArchContext,
    ProxyFn,
    register_proxy,
)


def genome_proxy(text: str) -> ProxyFn:
    """A proxy function scoring one architecture with the genome `text`, aggregated over layers as
    the run's `search.aggregate` says (default "sum")."""
    genome = parse_genome(text)

    def proxy(ctx: ArchContext) -> float:
        search = ctx.config.get("search") or {}
        scores = compile_genome(genome, search.get("aggregate", "sum"))
        return float(scores(stack_inputs([ctx.proxy_inputs(genome.inputs)]))[0])

    proxy.genome = genome
    return proxy


def genome_factors(genome) -> frozenset:
    """The random factors a genome's score reads (see `Proxy.factors`): the initial weights
    alone when W is its only input, else the weights and the batch."""
    return WEIGHTS_ONLY if set(genome.inputs) <= {"W"} else FACTORS


for _name, _text in PUBLISHED.items():
    register_proxy(_name, factors=genome_factors(parse_genome(_text)), passes=COMPACT_INPUTS)(genome_proxy(_text))
