"""Settings of the study modes (`study`, `transfer`, `joint_search`; see lpzero_jax/modes/study.py)."""

from ml_collections import ConfigDict


def study_config() -> ConfigDict:
    """config.study: which seeds, aggregations and architectures, and where other benchmarks live."""
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


def few_shot_config() -> ConfigDict:
    """config.few_shot: the few-shot protocol (`few_shot` mode) and the fitted ranker's modes
    (`fit_ranker`, `predict`); see lpzero_jax/modes/few_shot.py."""
    f = ConfigDict()
    # a feature table: CSV of arch_id, score (or ground_truth), one column per proxy, e.g. the
    # rank mode's scores.csv; predict: the candidates' features (score column may be empty), or
    # "" to compute the ranker's features of the benchmark_file's architectures
    f.features = ""
    f.seconds = ""  # optional JSON {proxy: extraction seconds per architecture} (cost report)
    f.sizes = "20,50,100"  # the S values of the protocol
    f.seeds = "42,43,44,45,46,47,48,49,50,51"  # the draws of S (10: Wilcoxon p can reach 0.002)
    f.searches = False  # also the genome searches on S (over the study.pool inputs; slow)
    f.variants = "bootstrap:q0.25,pars:0.01,top:5"  # FitnessOptions runs (search/few_shot.py)
    f.arch_features = True  # also the architecture descriptors read off each config (no cost)
    f.kinds = "single,ridge,lambdarank"  # the ranker models the CV chooses among
    f.ranker = ""  # predict: the ranker JSON written by fit_ranker
    f.candidates = ""  # predict: own-format file of the candidates (lines may leave the score out)
    return f
