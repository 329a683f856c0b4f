"""A candidate proxy: two inputs, `n_unary` unary ops on each, one binary op (paper Figure 1).

Text form (canonical, round-trips through `parse_genome`): the binary op applied to two nested unary
chains, innermost op applied first, every op written out (identity included, so the chain length
survives the round trip), e.g. `add(square(reciprocal(H)),log(softmax(fro(A))))` applies reciprocal
then square to H, fro then softmax then log to A, and adds the two.

Random sampling, crossover and mutation follow the original code's tree structure: each input gene,
each unary position and the binary gene is inherited from either parent (crossover) or resampled with
probability 1/2 (mutation); unlike the original they keep the genome's own `n_unary`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence, Tuple

import numpy as np

from lpzero_jax.errors import UserError
from lpzero_jax.expression.ops import BINARY_NAMES, UNARY_NAMES
from lpzero_jax.inputs import INPUT_NAMES

# other spellings found in the paper and the original code
ALIASES = {
    "pow": "square", "element_wise_pow": "square", "invert": "reciprocal", "inverse": "reciprocal",
    "element_wise_invert": "reciprocal", "revert": "neg", "element_wise_revert": "neg",
    "norm_fro": "fro", "frobenius_norm": "fro", "norm_sum": "normsum", "norm_l1": "l1",
    "l1_norm": "l1", "log_softmax": "logsoftmax", "min_max": "minmax", "min_max_normalize": "minmax",
    "average": "mean", "to_mean_scalar": "mean", "to_std_scalar": "std", "no_op": "identity",
    "disconnect": "prune", "element_wise_log": "log", "element_wise_abslog": "abslog",
    "element_wise_abs": "abs", "element_wise_exp": "exp", "element_wise_sqrt": "sqrt",
    "element_wise_relu": "relu", "element_wise_sum": "add", "element_wise_difference": "sub",
    "element_wise_product": "mul",
}
INPUT_ALIASES = {"act": "A", "jacobs": "J", "grad": "G", "head": "H", "weight": "W", "softmax": "S"}


class GenomeSyntaxError(UserError, ValueError):
    """A genome string that does not parse; the message points at the problem."""


@dataclasses.dataclass(frozen=True)
class Genome:
    """inputs: two of A J G H W S; unary: per branch the ops in application order; binary: add/sub/mul/div."""

    inputs: Tuple[str, str]
    unary: Tuple[Tuple[str, ...], Tuple[str, ...]]
    binary: str

    def __post_init__(self):
        for x in self.inputs:
            if x not in INPUT_NAMES:
                raise GenomeSyntaxError(f"unknown input {x!r}; known: {', '.join(INPUT_NAMES)}")
        for chain in self.unary:
            for op in chain:
                if op not in UNARY_NAMES:
                    raise GenomeSyntaxError(f"unknown unary op {op!r}; known: {', '.join(UNARY_NAMES)}")
        if self.binary not in BINARY_NAMES:
            raise GenomeSyntaxError(f"unknown binary op {self.binary!r}; known: {', '.join(BINARY_NAMES)}")

    @property
    def n_unary(self) -> int:
        return max(len(c) for c in self.unary)

    def branch_pruned(self, i: int) -> bool:
        return "prune" in self.unary[i]

    def __str__(self) -> str:
        return f"{self.binary}({_branch_text(self.inputs[0], self.unary[0])}," \
               f"{_branch_text(self.inputs[1], self.unary[1])})"


def _branch_text(x: str, ops: Sequence[str]) -> str:
    text = x
    for op in ops:
        text = f"{op}({text})"
    return text


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*|\(|\)|,)")


def _tokenize(text: str):
    pos, tokens = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise GenomeSyntaxError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def parse_genome(text: str) -> Genome:
    """Parses the text form (aliases accepted) into a Genome; GenomeSyntaxError otherwise."""
    tokens = _tokenize(text)
    pos = 0

    def expect(tok):
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != tok:
            got = tokens[pos] if pos < len(tokens) else "end of text"
            raise GenomeSyntaxError(f"expected {tok!r}, got {got!r} in {text!r}")
        pos += 1

    def branch():
        """One branch: unary ops applied to an input, read without recursion (a genome nested
        1,000 deep is an error message or a genome, never a RecursionError)."""
        nonlocal pos
        ops = []
        while True:
            if pos >= len(tokens):
                raise GenomeSyntaxError(f"unexpected end of {text!r}")
            name = tokens[pos]
            pos += 1
            if pos < len(tokens) and tokens[pos] == "(":
                op = ALIASES.get(name, name)
                if op not in UNARY_NAMES:
                    raise GenomeSyntaxError(f"unknown unary op {name!r} in {text!r}; known: "
                                            f"{', '.join(UNARY_NAMES)}")
                ops.append(op)
                pos += 1
                continue
            x = INPUT_ALIASES.get(name, name)
            if x not in INPUT_NAMES:
                raise GenomeSyntaxError(f"unknown input {name!r} in {text!r}; known: "
                                        f"{', '.join(INPUT_NAMES)}")
            break
        for _ in ops:
            expect(")")
        return x, tuple(reversed(ops))  # application order: innermost first

    if not tokens:
        raise GenomeSyntaxError("empty genome")
    name = ALIASES.get(tokens[0], tokens[0])
    if name not in BINARY_NAMES:
        raise GenomeSyntaxError(f"a genome starts with a binary op ({', '.join(BINARY_NAMES)}), "
                                f"got {tokens[0]!r} in {text!r}")
    pos = 1
    expect("(")
    x1, ops1 = branch()
    expect(",")
    x2, ops2 = branch()
    expect(")")
    if pos != len(tokens):
        raise GenomeSyntaxError(f"trailing text after the genome in {text!r}")
    return Genome((x1, x2), (ops1, ops2), name)


def looks_like_genome(text: str) -> bool:
    """True for strings shaped like `op(...)` (used to tell genomes from proxy names)."""
    return "(" in text and text.strip().endswith(")")


# --------------------------------------------------------------------------------------------------
# variation


def random_genome(rng: np.random.Generator, n_unary: int = 2) -> Genome:
    """A genome with inputs, unary ops and binary op drawn uniformly."""
    inputs = tuple(str(rng.choice(INPUT_NAMES)) for _ in range(2))
    unary = tuple(tuple(str(rng.choice(UNARY_NAMES)) for _ in range(n_unary)) for _ in range(2))
    return Genome(inputs, unary, str(rng.choice(BINARY_NAMES)))


def crossover(a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
    """Child taking each gene (input, unary position, binary) from a or b with probability 1/2."""
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    inputs = tuple(pick(a.inputs[i], b.inputs[i]) for i in range(2))
    unary = []
    for i in range(2):
        ca, cb = a.unary[i], b.unary[i]
        n = len(ca)
        unary.append(tuple(pick(ca[j], cb[j]) if j < len(cb) else ca[j] for j in range(n)))
    return Genome(inputs, tuple(unary), pick(a.binary, b.binary))


def mutate(g: Genome, rng: np.random.Generator, rate: float = 0.5) -> Genome:
    """Each gene resampled uniformly with probability `rate`; chain lengths are kept."""
    inputs = tuple(str(rng.choice(INPUT_NAMES)) if rng.random() < rate else x for x in g.inputs)
    unary = tuple(tuple(str(rng.choice(UNARY_NAMES)) if rng.random() < rate else op for op in chain)
                  for chain in g.unary)
    binary = str(rng.choice(BINARY_NAMES)) if rng.random() < rate else g.binary
    return Genome(inputs, unary, binary)
