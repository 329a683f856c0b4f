"""FlexiBERT benchmark (500 trained NAS-Bench-BERT architectures, GLUE average as ground truth).

python -m lpzero_jax.main --config=experiments/flexibert.py --config.mode=rank \
    --config.proxies=params,attention_confidence --config.workdir=runs/flexibert_rank
"""

from ml_collections import ConfigDict, config_dict


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.family = "flexibert"
    c.mode = "rank"
    c.workdir = "runs/flexibert"
    c.seed = 42  # model init and mini-batch sampling

    # data (read at run time; never part of the repository)
    c.data_root = config_dict.placeholder(str)  # default: $LPZERO_DATA or ../shared/data
    c.benchmark_file = config_dict.placeholder(str)  # default: <data_root>/flexibert/BERT_benchmark.json
    c.num_archs = 0  # first N benchmark entries; 0 = all 500
    c.arch_reading = "benchmark"  # or "pytorch_reference" (hidden 256, FFN 1024 as the reference code)
    c.corpus = "wikitext-2/valid.txt"  # relative to data_root
    c.corpus_file = config_dict.placeholder(str)  # an explicit corpus path instead
    c.vocab_path = config_dict.placeholder(str)  # BERT uncased vocab.txt (else found in packages)
    c.batch_size = 128  # paper: 128 for BERT
    c.seq_len = 128

    # rank mode ("all" = every registered hand-crafted proxy)
    c.proxies = "params,attention_confidence"
    c.zerolm_alpha = 0.5  # ZeroLM's attention/FFN balance for the 'zerolm' proxy
    c.zerolm_sample_size = 50  # archs the two fitted-alpha ZeroLM variants are fitted on

    # compact proxy inputs (see lpzero_jax/inputs.py)
    c.inputs = ConfigDict()
    c.inputs.sample_size = 4096  # values kept per tensor
    c.inputs.sample_seed = 0
    c.inputs.cache_dir = config_dict.placeholder(str)  # default: <workdir>/inputs_cache
    return c
