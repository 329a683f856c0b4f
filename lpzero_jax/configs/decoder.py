"""Decoder family: your own benchmark of decoders described by LitGPT Config fields or Hugging Face
config.json dicts (docs/decoder.md), ranked (mode rank).

python -m lpzero_jax.main --config=lpzero_jax/configs/decoder.py \
    --config.benchmark_file=examples/decoder_gpt_s.jsonl --config.proxies=params,params_attn,lpzero_gpt2 --config.workdir=runs/gpt_s_rank
"""

from ml_collections import ConfigDict, config_dict

from lpzero_jax.configs.base import base_config


def get_config() -> ConfigDict:
    c = base_config()
    c.family = "decoder"
    c.mode = "rank"
    c.workdir = "runs/decoder"
    c.benchmark_file = config_dict.placeholder(str)  # required: an own-format file, family "decoder"
    # text: GPT-2 BPE; a vocab_size below 50,257 maps ids through the reduced vocabulary of the
    # vocab_size - 1 most frequent ids of vocab_corpus (+ UNK), for models with smaller tables
    c.vocab_size = config_dict.placeholder(int)
    c.vocab_corpus = config_dict.placeholder(str)
    c.batch_size = 16
    c.seq_len = 128  # must fit every architecture's block_size (and sliding window)
    c.proxies = "params,params_nonembedding,params_attn,params_ffn,lpzero_gpt2"
    return c
