"""Defaults shared by every experiment config (experiments/<family>.py start from `base_config`)."""

from ml_collections import ConfigDict, config_dict


def base_config() -> ConfigDict:
    """Fields every mode understands; a family config sets `family` and its data/batch fields."""
    c = ConfigDict()
    c.family = ""
    c.mode = "search"
    c.workdir = "runs/default"
    c.seed = 42  # model init, mini-batch sampling, architecture sample, search
    c.train_mode = False  # dropout on, as the reference scores its models (PyTorch's default
    #                       train mode); masks fixed by `seed`. gpt2 and flexibert only
    # JAX persistent cache; default (None): ~/.cache/lpzero_jax/xla (runtime.user_cache_dir); "" to disable
    c.compilation_cache_dir = config_dict.placeholder(str)
    c.memory_limit_gb = 0.0  # refuse an architecture whose memory estimate exceeds this before
    #                          allocating it; 0 = the host's (or accelerator's) free memory

    # data (read at run time; never part of the repository)
    c.data_root = config_dict.placeholder(str)  # default: $LPZERO_DATA or ../shared/data
    c.num_archs = 0  # first N benchmark entries; 0 = all
    c.corpus = "wikitext-2/valid.txt"  # relative to data_root
    c.corpus_file = config_dict.placeholder(str)  # an explicit corpus path instead
    c.vocab_path = config_dict.placeholder(str)  # tokenizer files (else found in packages)
    c.batch_size = 16
    c.seq_len = 128

    # rank mode: comma list of proxy names and/or genomes, or "all"
    c.proxies = "params"
    c.rank_shard = ""  # "i/n": score only the archs with index % n == i, so n processes can
    #                    share one workdir; whichever run finds every value present writes the tables
    c.rank = ConfigDict()  # how rank mode computes the proxies (lpzero_jax/modes/rank.py)
    c.rank.fuse_hvp = True  # with GraSP: backward + HVP as one program (faster; gradient proxies
    #                         then share its seconds). False times each stage on its own.
    c.rank.arch_ids = ""  # "id,id,...": score only these architectures (e.g. a timing sample)
    c.rank.keep_residuals_gb = 1.0  # the zoo's staged gradient passes keep this many GB of layer
    #   VJP residuals, then recompute the layers beyond (same values; None keeps all: faster on the
    #   largest architectures, about twice the peak memory; docs/throughput_accelerator.md#memory)
    c.rank.keep_programs_gb = 1.0  # when resident memory after an architecture is this many GB
    #   above its floor (before the first; then what the last drop left), every compiled program
    #   is dropped (compiled again, or read from the persistent compilation cache, when needed);
    #   None keeps all (GPT-2's 200 grew ~0.2 GB per architecture, to 8.7 GB peak)
    c.zerolm = ConfigDict()  # the ZeroLM proxies (lpzero_jax/proxies/zerolm.py)
    c.zerolm.alpha = 0.5  # attention/FFN balance of the 'zerolm' proxy
    c.zerolm.sample_size = 50  # archs the two fitted-alpha ZeroLM variants are fitted on

    # search mode (paper Section 4.1 settings)
    c.search = ConfigDict()
    c.search.population = 80
    c.search.generations = 1000
    c.search.pool_ratio = 0.1
    c.search.crossover_rate = 0.5
    c.search.mutation_rate = 0.5
    c.search.n_unary = 2
    c.search.sample_archs = 50  # S, drawn with config.seed; the rest are held out
    c.search.rps = True
    c.search.baselines = "random"  # comma list of: random, no_rps (same evaluation budget)
    c.search.aggregate = "sum"  # tensors of a layer and layers of a model are summed (or "mean")
    c.search.evaluator = "program"  # "program" (compile once, genomes as data) or "compiled"
    c.search.checkpoint_every = 25
    c.search.evaluate_all = True  # also score the best genome on every (held-out) architecture
    # what the run returns, chosen on S (lpzero_jax/search/answer.py): "genome" (Algorithm 1's
    # best), "best_zoo_on_S" (the search.zoo proxy best on S) or "ranker" (fitted on S over
    # search.ranker_features); the shipped configs set the few-shot study's winner per family
    c.search.answer = "genome"
    c.search.zoo = "params"  # zoo proxies scored on every arch for best_zoo_on_S and the ranker
    c.search.ranker_features = "arch,genome,zoo"  # the ranker's features: descriptors, genome, zoo
    c.search.ranker_kinds = "ridge"  # the model kinds the ranker's CV chooses among (single,ridge,lambdarank)
    c.study = study_config()  # study / transfer / joint_search modes (lpzero_jax/modes/study.py)
    c.few_shot = few_shot_config()  # few_shot / fit_ranker / predict (lpzero_jax/modes/few_shot.py)

    # bench mode (lpzero_jax/modes/bench.py): measured on the S sampled architectures
    c.bench = ConfigDict()
    c.bench.candidates = 1000  # random genomes scored by the compile-once program
    c.bench.compiled_candidates = 30  # of which also compiled one program each
    c.bench.naive_candidates = 1  # candidates scored by re-extracting every arch's inputs
    c.bench.flops_archs = 50  # archs whose extraction FLOPs are counted (XLA cost analysis)
    #                           and whose host share is measured (modes/bench_host.py)
    c.bench.zoo_archs = 0  # archs on which the zoo's proxies are timed, host vs device passes
    c.bench.zoo_proxies = "all"  # the proxies of that measurement (rank's `proxies` syntax)

    # scale-out (lpzero_jax/parallel.py)
    c.parallel = ConfigDict()
    c.parallel.devices = 0  # local devices used for extraction and candidate evaluation; 0 = all
    c.parallel.shard_candidates = True  # shard the genome program over the local devices
    c.distributed = ConfigDict()  # several hosts: jax.distributed.initialize
    c.distributed.coordinator_address = config_dict.placeholder(str)  # e.g. "10.0.0.1:1234"
    c.distributed.num_processes = 1
    c.distributed.process_id = 0
    c.distributed.auto_detect = False  # let JAX find the cluster itself (SLURM, Cloud TPU VM)
    c.distributed.initialization_timeout_s = 300  # longest wait for every process to join
    c.distributed.heartbeat_timeout_s = 100  # a process silent this long counts as dead
    c.distributed.shutdown_timeout_s = 300
    c.distributed.barrier_timeout_s = 86400  # longest wait for the other hosts' extraction

    # compact proxy inputs (see lpzero_jax/inputs.py)
    c.inputs = ConfigDict()
    c.inputs.sample_size = 4096  # values kept per tensor
    c.inputs.sample_seed = 0
    # default (None): ~/.cache/lpzero_jax/inputs (runtime.user_cache_dir), shared by every workdir
    # (content-keyed); <workdir>/inputs_cache in a multi-process job (the hosts share the workdir)
    c.inputs.cache_dir = config_dict.placeholder(str)
    return c


def study_config() -> ConfigDict:
    """config.study (the `study`, `sensitivity`, `transfer` and `joint_search` modes): which seeds, aggregations and architectures, and where other benchmarks live."""
    s = ConfigDict()
    # seeds study: each seed draws its own S sample and seeds its own searches; the proxy inputs
    # stay those of config.seed (model init and mini-batch), extracted once
    s.num_seeds = 5  # seeds config.seed, config.seed + 1, ... (unless `seeds` lists them)
    s.seeds = ""  # explicit comma list, e.g. "0,1,2"
    s.aggregates = ""  # comma list of "sum"/"mean"; "" = search.aggregate
    # which architectures: "all" (extract what is missing), "cached" (those whose inputs are in
    # the input cache when the run starts) or the path of a file of arch ids, one per line;
    # transfer / joint_search: one spec for every benchmark, or "name=spec,..." ('all' if unnamed)
    s.pool = "all"
    # transfer / joint_search: the benchmarks (shipped config names) and, per benchmark,
    # "name=path" comma lists: its input cache dir and the workdir of its `search` run
    s.benchmarks = "flexibert,gpt2,llama"
    s.cache_dirs = ""
    s.search_dirs = ""
    # sensitivity: the proxies' rho with other init seeds (batch of config.seed) and other batch
    # seeds (init of config.seed), one factor at a time, over the pool; each setting is extracted
    s.init_seeds = "43,44,45,46"
    s.batch_seeds = "43,44,45,46"
    s.genomes = ""  # ';'-separated genomes scored besides lpzero_<family> and the searched one
    s.published = True  # also score the paper's genome lpzero_<family> (if the family has one)
    # comma list of zoo proxies (rank-mode names). sensitivity: scored per setting as well, each
    # computed only at the seeds of the factors it reads (e.g. params once, zerolm once per init
    # seed). study: references scored on every seed's held-out archs, computed once at config.seed
    s.proxies = ""
    return s


def subnet_search_config() -> ConfigDict:
    """Settings of `subnet_search` mode (lpzero_jax/modes/subnet_search.py): evolution over LoNAS
    subnets of a supernet under a parameter budget; a family config adds where its supernet comes from."""
    s = ConfigDict()
    s.checkpoint = config_dict.placeholder(str)  # local HF LLaMA folder (config.json + safetensors)
    s.adapter_path = config_dict.placeholder(str)  # optional peft adapter_model.safetensors
    s.width_ratios = (1.0, 0.875, 0.75, 0.625, 0.5)  # LoNAS: 11008 .. 5504 on LLaMA-7B
    s.rank_choices = (32, 28)  # LoNAS adapter ranks (largest = the supernet's)
    s.separate_ffn_rank = False  # True: gate/up adapters get their own rank knob (LoNAS's nncf groups)
    s.lora_scaling = 2.0  # peft lora_alpha / r = 64 / 32
    s.budget_fraction = 0.85  # max params / supernet params (paper: 5.7B of 6.7B)
    # fitness: params | proxy:<name> | genome:<genome> | published:<key>; default: the paper's
    # Appendix B LLaMA proxy (lpzero_jax.expression.published)
    s.fitness = "published:lpzero_llama"
    s.population = 20
    s.generations = 10
    s.parent_fraction = 0.25
    s.mutation_prob = 0.1
    s.crossover_prob = 0.5
    s.top_k = 5
    s.seed = 42
    return s


def few_shot_config() -> ConfigDict:
    """config.few_shot: the few-shot protocol (`few_shot` mode) and the fitted ranker's modes
    (`fit_ranker`, `predict`); see lpzero_jax/modes/few_shot.py."""
    f = ConfigDict()
    # a feature table: CSV of arch_id, score (or ground_truth), one column per proxy, e.g. the
    # rank mode's scores.csv; predict: the candidates' features (score column may be empty), or
    # "" to compute the ranker's features of the benchmark_file's architectures
    f.features = ""
    f.seconds = ""  # optional JSON {proxy: extraction seconds per architecture} or the rank mode's
    #                 ranking.json: each feature set's cost per architecture in the report
    f.label = ""  # the benchmark's name in the report ("" = family (table file name))
    f.sizes = "20,50,100"  # the S values of the protocol
    f.seeds = "42,43,44,45,46,47,48,49,50,51"  # the draws of S (10: Wilcoxon p can reach 0.002)
    f.searches = False  # also the genome searches on S (over the study.pool inputs; slow)
    f.variants = "bootstrap:q0.25,pars:0.01,top:5"  # FitnessOptions runs (search/few_shot.py)
    f.arch_features = True  # also the architecture descriptors read off each config (no cost)
    f.kinds = "single,ridge,lambdarank"  # the ranker models the CV chooses among
    f.ranker = ""  # predict: the ranker JSON written by fit_ranker
    f.candidates = ""  # predict: own-format file of the candidates (lines may leave the score out)
    return f


def adapter_config() -> ConfigDict:
    """config.adapter: the LoNAS super-adapter of a pretrained LLaMA (`train_adapter` mode,
    lpzero_jax/modes/train_adapter.py; the training itself: lpzero_jax/adapters/train.py)."""
    a = ConfigDict()
    # the elastic space the adapter serves (LoNAS: LoRA r 32, alpha 64 on q, k, v, up, gate)
    a.rank_choices = (32, 24, 16)  # a smaller rank = the leading rows/columns of the largest
    a.width_ratios = (1.0, 0.875, 0.75, 0.625, 0.5)  # FFN widths per layer
    a.scaling = 2.0  # lora_alpha / r of the largest rank, the same for every rank
    # training (every field here names the result: its digest is the cache folder's name)
    a.steps = 2000  # schedule length (warm-up + cosine); a run may stop earlier and resume
    a.batch_size = 4
    a.seq_len = 128
    a.learning_rate = 1e-3  # LoNAS: 3e-4 and 100 warm-up steps for LLaMA-7B at 16 sequences a step;
    a.warmup_steps = 30  #     a 135M model at 4 x 128 tokens a step, on a CPU budget: faster
    a.final_lr_fraction = 0.0
    a.weight_decay = 0.0
    a.sandwich_period = 4  # per cycle: the largest subnet, the smallest, then random ones
    a.seed = 0  # adapter init and random subnets
    a.data_seed = 0  # batch order
    a.train_corpus = "wikitext-2/valid.txt"  # training text (relative to data_root)
    a.eval_corpus = "wikitext-2/test.txt"  # evaluation text only
    a.eval_windows = 8  # evenly spread windows (the subnet benchmark's slice)
    a.eval_seq_len = 256
    # run control (a resumed run may change these)
    a.eval_archs = "full,smallest,s000,s001,s002,s003,s004"  # benchmark subnets evaluated after training
    a.checkpoint_every = 25
    a.log_every = 5
    a.stop_at = 0  # stop at this step (0: at `steps`)
    a.max_seconds = 0.0  # stop after this long (0: no limit)
    # the trained adapter: <cache_dir>/<digest>/; default (None): ~/.cache/lpzero_jax/adapters
    # (runtime.user_cache_dir, as the input and XLA caches)
    a.cache_dir = config_dict.placeholder(str)
    return a
