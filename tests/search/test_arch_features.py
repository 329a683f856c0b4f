"""Architecture descriptors read off configs, for any family."""

import numpy as np

from lpzero_jax.search.arch_features import describe, descriptor_table

FLEXI = {"hidden_size": 256, "encoder_layers": [
    {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 4,
     "feed_forward_dimension": 1024, "num_feed_forward": 3},
    {"operation_type": "LT", "operation_parameter": "DCT", "num_operation_heads": 2,
     "feed_forward_dimension": 512, "num_feed_forward": 1}]}
GPT2 = {"n_layer": 2, "d_model": 128, "n_head": (2, 4), "d_inner": (100, 300), "tie_weight": True}


def test_describe_flattens_numbers_strings_and_lists():
    d = describe(FLEXI)
    assert d["hidden_size"] == 256
    assert d["encoder_layers.len"] == 2
    assert d["encoder_layers.operation_type=SA"] == 1 and d["encoder_layers.operation_type=LT"] == 1
    assert d["encoder_layers.feed_forward_dimension.sum"] == 1536
    assert d["encoder_layers.num_operation_heads.max"] == 4
    g = describe(GPT2)
    assert (g["n_head.mean"], g["d_inner.min"], g["d_inner.len"], g["tie_weight"]) == (3.0, 100.0, 2.0, 1.0)


def test_descriptor_table_aligns_counts_as_zero_and_drops_constant_columns():
    other = {"hidden_size": 128, "encoder_layers": FLEXI["encoder_layers"][:1]}
    names, values = descriptor_table([FLEXI, other])
    col = {n: values[:, j] for j, n in enumerate(names)}
    assert all(n.startswith("arch:") for n in names)
    assert col["arch:encoder_layers.operation_type=LT"].tolist() == [1.0, 0.0]  # missing count = 0
    assert "arch:encoder_layers.operation_type=SA" not in col  # constant: dropped
    assert col["arch:hidden_size"].tolist() == [256.0, 128.0]
    # a fitted ranker's names, in its order, for new architectures (none dropped, unknown = NaN)
    again, v = descriptor_table([other], ["arch:hidden_size", "arch:nope", "arch:x=1"])
    assert again == ["arch:hidden_size", "arch:nope", "arch:x=1"]
    assert v[0, 0] == 128 and np.isnan(v[0, 1]) and v[0, 2] == 0
