"""GPT-2 benchmark (200 trained LiteTransformerSearch architectures, -validation perplexity as ground truth).

lpzero --config=gpt2   (from any directory; the same as the command below in a clone)

python -m lpzero_jax.main --config=experiments/gpt2.py
python -m lpzero_jax.main --config=experiments/gpt2.py --config.mode=rank \
    --config.proxies=params,params_nonembedding,params_attn,params_ffn --config.workdir=runs/gpt2_rank
"""

from ml_collections import ConfigDict, config_dict

from lpzero_jax.configs.base import base_config


def get_config() -> ConfigDict:
    c = base_config()
    c.family = "gpt2"
    c.workdir = "runs/gpt2"
    c.benchmark_dir = config_dict.placeholder(str)  # default: <data_root>/gpt2_wt103/random_GPT2_wt103
    # a benchmark file instead: your own JSON-lines benchmark (benchmarks/own.py) or a compact LTS file
    c.benchmark_file = config_dict.placeholder(str)
    c.batch_size = 16  # paper: 16 for GPT-2
    c.seq_len = 192  # the benchmark configs' tgt_len (and number of positions)
    c.proxies = "params,params_nonembedding,params_attn,params_ffn"
    # the answer (docs/results/few_shot.md, S = 50, 10 seeds, all 200): ridge on the four
    # shape-counted parameter groups + the evolution genome 0.981 +- 0.004 held-out rho, vs the
    # groups alone 0.977 (p = 0.010, 8/10 wins) and the best group chosen on S 0.972 (p = 0.002,
    # 10/10); random search 0.980 is not beaten (p = 0.70). The genome is the search's own, the
    # groups are counted from shapes: no extraction beyond the search's
    c.search.answer = "ranker"
    c.search.ranker_features = "genome,zoo"
    c.search.zoo = "params,params_nonembedding,params_attn,params_ffn"
    return c
