"""Turns the `proxies` config string into named proxy functions."""

from __future__ import annotations

from typing import Dict

from lpzero_jax.expression.genome import looks_like_genome
from lpzero_jax.proxies.base import COMPACT_INPUTS, PROXIES, Proxy
from lpzero_jax.proxies.genome import genome_factors, genome_proxy


def split_proxy_list(spec: str) -> list:
    """Splits 'a,b,add(x(A),y(H))' at top-level commas only (genomes contain commas)."""
    parts, depth, cur = [], 0, []
    for ch in spec:
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def resolve_proxies(spec: str) -> Dict[str, Proxy]:
    """'params,attention_confidence,add(abs(G),log(W))' or 'all' -> {name: Proxy}, in the given order.

    Names are looked up in PROXIES; anything shaped like `op(...)` is parsed as a genome (a syntax
    error names the problem). A genome proxy's column is the canonical genome text.
    """
    import lpzero_jax.proxies  # noqa: F401  (registers the built-in proxies)

    names = PROXIES.names() if spec.strip() == "all" else split_proxy_list(spec)
    if not names:
        raise ValueError("config.proxies is empty")
    out = {}
    for name in names:
        if looks_like_genome(name):
            fn = genome_proxy(name)
            out[str(fn.genome)] = Proxy(fn, factors=genome_factors(fn.genome),
                                       passes=COMPACT_INPUTS)
        else:
            out[name] = PROXIES.get(name)
    return out
