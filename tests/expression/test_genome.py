"""Genome text form, variation operators and the published proxies."""

import numpy as np
import pytest

from lpzero_jax.expression import PUBLISHED, parse_genome
from lpzero_jax.expression.genome import (Genome, GenomeSyntaxError, crossover, mutate,
                                          random_genome)


def test_round_trip_of_random_genomes():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        for _ in range(200):
            g = random_genome(rng, n)
            assert parse_genome(str(g)) == g
            assert g.n_unary == n


def test_text_form_nests_innermost_first():
    g = parse_genome("add(square(reciprocal(H)),log(softmax(fro(A))))")
    assert g.inputs == ("H", "A")
    assert g.unary == (("reciprocal", "square"), ("fro", "softmax", "log"))
    assert g.binary == "add"
    assert str(g) == "add(square(reciprocal(H)),log(softmax(fro(A))))"


def test_aliases_from_the_paper_and_original_code():
    g = parse_genome("element_wise_sum(pow(invert(head)), log_softmax(norm_fro(act)))")
    assert str(g) == "add(square(reciprocal(H)),logsoftmax(fro(A)))"


@pytest.mark.parametrize("text,message", [
    ("add(foo(H),A)", "unknown unary op 'foo'"),
    ("add(log(X),A)", "unknown input 'X'"),
    ("log(A)", "starts with a binary op"),
    ("add(log(A))", "expected ','"),
    ("add(log(A),H) extra", "trailing text"),
    ("add(log(A),H", "expected '\\)'"),
    ("", "empty genome"),
])
def test_syntax_errors_say_what_is_wrong(text, message):
    with pytest.raises(GenomeSyntaxError, match=message):
        parse_genome(text)


def test_published_proxies_parse():
    for text in PUBLISHED.values():
        assert str(parse_genome(text)) == text


def test_variation_keeps_chain_length():
    """The original reset n_unary to 2 in crossover/mutation; ours keeps it."""
    rng = np.random.default_rng(1)
    for n in (3, 4):
        a, b = random_genome(rng, n), random_genome(rng, n)
        for _ in range(50):
            assert crossover(a, b, rng).n_unary == n
            assert mutate(a, rng).n_unary == n


def test_crossover_takes_genes_from_parents():
    rng = np.random.default_rng(2)
    a = Genome(("A", "A"), (("log", "log"), ("log", "log")), "add")
    b = Genome(("H", "H"), (("exp", "exp"), ("exp", "exp")), "mul")
    for _ in range(20):
        c = crossover(a, b, rng)
        assert set(c.inputs) <= {"A", "H"} and c.binary in {"add", "mul"}
        assert {op for ch in c.unary for op in ch} <= {"log", "exp"}


# --- property tests (Hypothesis): any text parses or gives one GenomeSyntaxError ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.sampled_from(["add", "sub", "mul", "div", "log", "abs", "sqrt", "exp", "W", "A", "G",
                          "H", "S", "J", "grad", "act", "(", ")", ",", " ", "x", "prune"])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80) | st.lists(_WORDS, max_size=40).map("".join))
def test_any_text_parses_or_is_a_genome_syntax_error(text):
    from lpzero_jax.errors import UserError
    from lpzero_jax.expression.genome import GenomeSyntaxError, parse_genome

    try:
        genome = parse_genome(text)
    except GenomeSyntaxError as e:
        assert isinstance(e, UserError) and str(e)
        return
    assert parse_genome(str(genome)) == genome  # what parses prints back to itself


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 3))
def test_nesting_depth_is_no_recursion_limit(depth, cut):
    from lpzero_jax.expression.genome import GenomeSyntaxError, parse_genome

    text = "add(" + "log(" * depth + "W" + ")" * (depth - cut) + ",A)"
    if cut:
        try:
            parse_genome(text)
        except GenomeSyntaxError:
            return
        raise AssertionError("unbalanced genome parsed")
    assert parse_genome(text).unary[0] == ("log",) * depth
