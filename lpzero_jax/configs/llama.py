"""LLaMA family: our CPU-trained mini-benchmark (48 small LLaMAs, -validation perplexity as ground
truth; see README, "LLaMA") for `rank` / `search`, and LoNAS subnets of a LLaMA supernet for
`subnet_search`.

lpzero --config=llama   (from any directory; the same as the command below in a clone)

python -m lpzero_jax.main --config=experiments/llama.py --config.proxies=params,lpzero_llama \
    --config.workdir=runs/llama_rank
python -m lpzero_jax.main --config=experiments/llama.py --config.mode=subnet_search \
    --config.subnet_search.fitness=params --config.workdir=runs/llama_subnets
"""

from ml_collections import ConfigDict, config_dict

from lpzero_jax.configs.base import base_config, subnet_search_config


def get_config() -> ConfigDict:
    c = base_config()
    c.family = "llama"
    c.mode = "rank"
    c.workdir = "runs/llama"
    c.benchmark_file = config_dict.placeholder(str)  # default: lpzero_jax/data/llama_minibench.json
    # proxy batch: the benchmark's TRAINING text (valid.txt is its ground truth; proxies must not see it)
    c.corpus = "wikitext-2/test.txt"
    # LM vocabulary: GPT-2 BPE reduced to the vocab_size-1 most frequent ids of vocab_corpus + UNK, as
    # the mini-benchmark was trained (checked against the benchmark file); >= 50257: GPT-2's own ids
    c.vocab_size = 4096
    c.vocab_corpus = "wikitext-2/test.txt"
    c.tokenizer_path = config_dict.placeholder(str)  # a real checkpoint's own tokenizer folder (local)
    c.batch_size = 32  # paper: 32 for LLaMA
    c.seq_len = 64  # the benchmark's training window
    c.proxies = "params,params_nonembedding,params_attn,params_ffn,lpzero_llama"
    c.search.sample_archs = 24  # of the 48 benchmark models; the other 24 are held out

    # subnet_search mode: evolution over LoNAS subnets (lpzero_jax/modes/subnet_search.py)
    c.subnet_search = subnet_search_config()
    c.subnet_search.supernet = ConfigDict(dict(  # used when no checkpoint: a small random-init supernet
        hidden_size=128, intermediate_size=512, num_hidden_layers=8, num_attention_heads=4,
        num_key_value_heads=4, rope_theta=10000.0, tie_word_embeddings=False))
    return c
