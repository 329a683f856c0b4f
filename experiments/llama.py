"""LLaMA family: our CPU-trained mini-benchmark (48 small LLaMAs, -validation perplexity as ground
truth) for `rank`, and LoNAS subnets of a LLaMA supernet for `subnet_search`.

PYTHONPATH=. python -m lpzero_jax.main --config=experiments/llama.py --config.proxies=params \
    --config.workdir=runs/llama_rank
PYTHONPATH=. python -m lpzero_jax.main --config=experiments/llama.py --config.mode=subnet_search \
    --config.subnet_search.fitness=params --config.workdir=runs/llama_subnets
"""

from ml_collections import ConfigDict, config_dict


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.family = "llama"
    c.mode = "rank"
    c.workdir = "runs/llama"
    c.seed = 42  # model init (supernet) and mini-batch sampling

    # data (read at run time; never part of the repository)
    c.data_root = config_dict.placeholder(str)  # default: $LPZERO_DATA or ../shared/data
    c.benchmark_file = config_dict.placeholder(str)  # default: lpzero_jax/benchmarks/data/llama_minibench.json
    c.num_archs = 0  # first N benchmark entries; 0 = all
    # proxy batch: the benchmark's TRAINING text (valid.txt is its ground truth; proxies must not see it)
    c.corpus = "wikitext-2/test.txt"
    c.vocab_path = config_dict.placeholder(str)  # folder with GPT-2 vocab.json + merges.txt (else package)
    # LM vocabulary: GPT-2 BPE reduced to the vocab_size-1 most frequent ids of vocab_corpus + UNK, as
    # the mini-benchmark was trained (checked against the benchmark file); >= 50257: GPT-2's own ids
    c.vocab_size = 4096
    c.vocab_corpus = "wikitext-2/test.txt"
    c.tokenizer_path = config_dict.placeholder(str)  # a real checkpoint's own tokenizer folder (local)
    c.batch_size = 32  # paper: 32 for LLaMA
    c.seq_len = 64  # the benchmark's training window

    # rank mode
    c.proxies = "params"

    # compact proxy inputs (see lpzero_jax/inputs.py)
    c.inputs = ConfigDict()
    c.inputs.sample_size = 4096
    c.inputs.sample_seed = 0
    c.inputs.cache_dir = config_dict.placeholder(str)  # default: <workdir>/inputs_cache

    # subnet_search mode: evolution over LoNAS subnets (lpzero_jax/modes/subnet_search.py)
    s = c.subnet_search = ConfigDict()
    s.checkpoint = config_dict.placeholder(str)  # local HF LLaMA folder (config.json + safetensors)
    s.adapter_path = config_dict.placeholder(str)  # optional peft adapter_model.safetensors
    s.supernet = ConfigDict(dict(  # used when no checkpoint: a small random-init supernet
        hidden_size=128, intermediate_size=512, num_hidden_layers=8, num_attention_heads=4,
        num_key_value_heads=4, rope_theta=10000.0, tie_word_embeddings=False))
    s.width_ratios = (1.0, 0.875, 0.75, 0.625, 0.5)  # LoNAS: 11008 .. 5504 on LLaMA-7B
    s.rank_choices = (32, 28)  # LoNAS adapter ranks (largest = the supernet's)
    s.separate_ffn_rank = False  # True: gate/up adapters get their own rank knob (LoNAS's nncf groups)
    s.lora_scaling = 2.0  # peft lora_alpha / r = 64 / 32
    s.budget_fraction = 0.85  # max params / supernet params (paper: 5.7B of 6.7B)
    s.fitness = "published:lpzero_llama"  # or params | proxy:<name> | genome:<genome>
    s.population = 20
    s.generations = 10
    s.parent_fraction = 0.25
    s.mutation_prob = 0.1
    s.crossover_prob = 0.5
    s.top_k = 5
    s.seed = 42
    return c
