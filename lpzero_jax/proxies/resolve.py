"""Turns the `proxies` config string into named proxy functions."""

from __future__ import annotations

from typing import Dict

from lpzero_jax.proxies.base import PROXIES, ProxyFn


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


def resolve_proxies(spec: str, config=None) -> Dict[str, ProxyFn]:
    """'params,attention_confidence' or 'all' -> {name: fn}, in the given order."""
    import lpzero_jax.proxies  # noqa: F401  (registers the built-in proxies)

    names = PROXIES.names() if spec.strip() == "all" else split_proxy_list(spec)
    if not names:
        raise ValueError("config.proxies is empty")
    return {name: PROXIES.get(name) for name in names}
