"""Python API: rank and search proxies on a benchmark, and score any Flax language model with any proxy.

    import lpzero_jax as lz
    r = lz.rank("gpt2", proxies="params,lpzero_gpt2", num_archs=20)   # or a benchmark file / folder
    r.spearman_rho["params"], r.scores["params"][:3], r.arch_ids[:3]
    s = lz.proxy_search("examples/gpt2_plain_20.jsonl", generations=20, population=20, sample_archs=10)
    s.best_genome, s.held_out["spearman_rho"]
    lz.score_model(MyLM(), "mul(std(relu(A)),abslog(l1(G)))", input_ids)     # {proxy: score}

`rank` and `proxy_search` run the same code as `lpzero --config=<family> --config.mode=rank|search`
(outputs in `workdir`, a temporary folder unless given) and return plain results.

Model protocol of `score_model` (the contract every built-in family's model follows):
  embed(input_ids [B, S] int) -> word embeddings [B, S, E]: the tensor the Jacobian J is taken
      against (J = d loss / d embeddings);
  proxy_loss(embeds, batch) -> scalar: the loss behind the gradients G and J, computed from the
      embeddings (batch = {"input_ids": ...} and anything else you pass); running it must `sow` the
      intermediates, inside submodules named `layer_<i>` (one per block, i = 0, 1, ...):
        self.sow("intermediates", "A", t)  FFN activations (after the nonlinearity)
        self.sow("intermediates", "H", t)  head outputs (the attention's query / key / value)
        self.sow("intermediates", "S", t)  softmax outputs (attention probabilities)
  __call__(input_ids) (or `init_all(input_ids)` when the model has one) touches every parameter,
      for `model.init`.
  W (and G = d loss / d W) are the parameters chosen by `is_weight(path)`; default: every `kernel`
      inside a `layer_<i>` module, i.e. the blocks' Dense matrices. Hand-crafted proxies that look
      at attention vs FFN weights find them by module names containing attn/attention and
      mlp/ffn/feed_forward (see `Family.weight_role`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
from ml_collections import ConfigDict

from lpzero_jax import text
from lpzero_jax import workdir as runner
from lpzero_jax.benchmarks import lts, minibench, own
from lpzero_jax.benchmarks.base import Arch, BenchmarkFormatError
from lpzero_jax.configs import NAMES, base_config, shipped_config
from lpzero_jax.errors import ModelProtocolError
from lpzero_jax.families import get_family
from lpzero_jax.families.base import Family
from lpzero_jax.models.init import path_names
from lpzero_jax.paths import read_json, resolve_data_file
from lpzero_jax.proxies.base import ArchContext
from lpzero_jax.proxies.resolve import resolve_proxies
from lpzero_jax.search.ranker import Ranker

PathLike = Union[str, Path]
BUILT_IN = NAMES  # benchmarks known by name: the shipped configs' families


# --- configs and benchmarks -------------------------------------------------------------------------

def experiment_config(family: str) -> ConfigDict:
    """The shipped run config of a family (what `lpzero --config=<family>` runs)."""
    if family not in NAMES:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(NAMES)}")
    return shipped_config(family)


def family_of(path: PathLike) -> str:
    """The family a benchmark file or folder holds: an own-format file's header, an LTS folder or
    compact file (gpt2), a NAS-Bench-BERT list (flexibert), a mini-benchmark's `family`."""

    path = Path(path).expanduser()
    if path.is_dir():
        return "gpt2"
    if not path.is_file():
        raise BenchmarkFormatError(f"{path}: no such benchmark file or folder")
    if own.is_own_format(path) or path.name.endswith((".jsonl", ".jsonl.gz")):
        return own.read_header(path)["family"]
    data = read_json(path, BenchmarkFormatError)
    if isinstance(data, list):
        return "flexibert"
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == lts.COMPACT_FORMAT:
        return "gpt2"
    if fmt == minibench.FORMAT:
        return str(data.get("family"))
    raise BenchmarkFormatError(f"{path}: not a benchmark this package reads (see benchmarks/own.py "
                               "for the JSON-lines format)")


def set_fields(config: ConfigDict, overrides: Optional[Mapping[str, Any]]) -> ConfigDict:
    """Sets dotted config fields ({"search.generations": 5, "batch_size": 2}); an unknown field is
    a KeyError naming it (a typo must not be ignored)."""
    for key, value in (overrides or {}).items():
        node, parts = config, key.split(".")
        for i, part in enumerate(parts):
            if part not in node:
                raise KeyError(f"unknown config field {'.'.join(parts[:i + 1])!r} (in {key!r})")
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = value
    return config


def benchmark_config(benchmark: PathLike, family: Optional[str] = None,
                     overrides: Optional[Mapping[str, Any]] = None) -> ConfigDict:
    """The run config for a benchmark: a family name (its built-in benchmark) or a file / folder
    path (own JSON-lines file, LTS folder or compact file, BERT_benchmark.json, mini-benchmark)."""
    name = str(benchmark)
    if family is None and name in BUILT_IN:
        return set_fields(experiment_config(name), overrides)
    family = family or family_of(benchmark)
    config = experiment_config(family)
    path = Path(benchmark).expanduser()
    if path.is_dir():
        if "benchmark_dir" not in config:
            raise BenchmarkFormatError(f"{path}: a benchmark folder is an LTS (gpt2) benchmark, "
                                       f"not {family}")
        config.benchmark_dir = str(path)
    else:
        config.benchmark_file = str(path)
    return set_fields(config, overrides)


def load_benchmark(benchmark: PathLike, family: Optional[str] = None,
                   num_archs: Optional[int] = None) -> List[Arch]:
    """The architectures of a benchmark (name or path), as `Arch(arch_id, config, score)` with the
    score higher-is-better."""
    config = benchmark_config(benchmark, family, {"num_archs": num_archs or 0})
    return get_family(config.family).load_benchmark(config)


# --- rank and search --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RankResult:
    """Per-architecture proxy scores and their rank correlation with the ground truth.

    arch_ids, ground_truth: in benchmark order (ground truth higher-is-better, e.g. -perplexity);
    scores[proxy]: one score per architecture (NaN where a proxy failed); kendall_tau[proxy],
    spearman_rho[proxy]: over the finite scores; workdir: where the files of the run are.
    """

    family: str
    arch_ids: List[Any]
    ground_truth: List[float]
    scores: Dict[str, List[float]]
    kendall_tau: Dict[str, float]
    spearman_rho: Dict[str, float]
    workdir: str


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The search's best genome and how it ranks: fitness on the sampled architectures, and rank
    correlations on the held-out ones and on all (None when `evaluate_all` is off); `answer`:
    what the run returns (`search.answer`: its method, choice made on S, held-out figures, every
    method's figures and those it did not beat; None without `evaluate_all`); `details` is the
    whole search.json."""

    family: str
    best_genome: str
    fitness_on_sample: float
    held_out: Optional[Dict[str, float]]
    all: Optional[Dict[str, float]]
    details: Dict[str, Any]
    workdir: str
    answer: Optional[Dict[str, Any]] = None


def _run(config: ConfigDict, mode: str, workdir: Optional[PathLike]):
    config.mode = mode
    config.workdir = str(workdir) if workdir else tempfile.mkdtemp(prefix=f"lpzero_{mode}_")
    return runner.run(config), config


def rank(benchmark: PathLike, proxies: Union[str, Sequence[str]] = "params", *,
         family: Optional[str] = None, num_archs: Optional[int] = None,
         workdir: Optional[PathLike] = None,
         overrides: Optional[Mapping[str, Any]] = None) -> RankResult:
    """Scores every architecture of a benchmark (name or path) with the proxies (registered names
    and/or genome strings; a list or a comma-separated string) and correlates them with the
    ground truth. `overrides`: any config fields, dotted ({"batch_size": 4, "seed": 1})."""
    fields = dict(overrides or {})
    fields["proxies"] = proxies if isinstance(proxies, str) else ",".join(proxies)
    fields["num_archs"] = num_archs or 0
    config = benchmark_config(benchmark, family, fields)
    table, config = _run(config, "rank", workdir)
    return RankResult(
        family=config.family, arch_ids=list(table.arch_ids),
        ground_truth=[float(v) for v in table.ground_truth],
        scores={c: [float(v) for v in s] for c, s in table.scores.items()},
        kendall_tau={c: float(r["kendall_tau"]) for c, r in table.ranking.items()},
        spearman_rho={c: float(r["spearman_rho"]) for c, r in table.ranking.items()},
        workdir=config.workdir)


def proxy_search(benchmark: PathLike, *, family: Optional[str] = None,
           generations: Optional[int] = None, population: Optional[int] = None,
           sample_archs: Optional[int] = None, num_archs: Optional[int] = None,
           baselines: str = "", workdir: Optional[PathLike] = None,
           overrides: Optional[Mapping[str, Any]] = None) -> SearchResult:
    """LPZero's proxy search (Algorithm 1 with rule-based pruning) on a benchmark (name or path):
    fitness = Spearman rho on `sample_archs` sampled architectures; the best genome is then scored
    on the rest. Unset arguments keep the family config's values (the paper's G=1000, p=80);
    `baselines` "random" / "no_rps" adds the baselines of the CLI run."""
    fields = {"search.baselines": baselines, "num_archs": num_archs or 0}
    for key, value in (("search.generations", generations), ("search.population", population),
                       ("search.sample_archs", sample_archs)):
        if value is not None:
            fields[key] = value
    fields.update(overrides or {})
    config = benchmark_config(benchmark, family, fields)
    result, config = _run(config, "search", workdir)
    return SearchResult(family=config.family, best_genome=result["best_genome"],
                        fitness_on_sample=float(result["fitness_on_sample"]),
                        held_out=result.get("held_out"), all=result.get("all"), details=result,
                        workdir=config.workdir, answer=result.get("answer"))



# --- few-shot ranking (issue 28) ---------------------------------------------------------------------

def few_shot(features: PathLike, family: str, *, sizes: Sequence[int] = (20, 50, 100),
             seeds: Sequence[int] = tuple(range(42, 52)), workdir: Optional[PathLike] = None,
             overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The few-shot protocol (lpzero_jax/study/few_shot.py) over a feature table (CSV of arch_id,
    score, one column per proxy): per seed and S, every method chosen on S, scored on the rest.
    Returns the `few_shot` mode's result (records, summary with paired tests)."""
    fields = {"few_shot.features": str(features), "few_shot.sizes": ",".join(map(str, sizes)),
              "few_shot.seeds": ",".join(map(str, seeds))}
    fields.update(overrides or {})
    result, _ = _run(set_fields(experiment_config(family), fields), "few_shot", workdir)
    return result


def fit_ranker(features: PathLike, family: str, *, kinds: str = "single,ridge,lambdarank",
               workdir: Optional[PathLike] = None,
               overrides: Optional[Mapping[str, Any]] = None):
    """A ranker fitted on every row of a feature table (your labelled architectures), model and
    hyperparameters chosen by cross-validation inside it; saved as WORKDIR/ranker.json. Returns
    the `search.ranker.Ranker` (its `predict` takes [N, F] feature values)."""

    fields = {"few_shot.features": str(features), "few_shot.kinds": kinds}
    fields.update(overrides or {})
    result, _ = _run(set_fields(experiment_config(family), fields), "fit_ranker", workdir)
    return Ranker.from_dict(result)


def predict(ranker: PathLike, candidates: Optional[PathLike] = None, *,
            features: Optional[PathLike] = None, family: Optional[str] = None,
            workdir: Optional[PathLike] = None,
            overrides: Optional[Mapping[str, Any]] = None) -> List[dict]:
    """Ranks new candidates with a saved ranker: `candidates`, an own-format file whose lines may
    leave the score out (their features computed like the rank mode's proxies), or `features`,
    their feature table. Returns [{rank (1 = best), arch_id, predicted}], best first."""
    if candidates is None and features is None:
        raise ValueError("predict: give the candidates (own-format file) or their features (CSV)")
    family = family or (family_of(candidates) if candidates is not None else None)
    if family is None:
        raise ValueError("predict: give the family of the candidates (e.g. family='flexibert')")
    fields = {"few_shot.ranker": str(ranker), "few_shot.candidates": str(candidates or ""),
              "few_shot.features": str(features or "")}
    fields.update(overrides or {})
    result, _ = _run(set_fields(experiment_config(family), fields), "predict", workdir)
    return result["predictions"]

# --- any Flax model ---------------------------------------------------------------------------------

def default_is_weight(path: Tuple[str, ...]) -> bool:
    """W by default: every `kernel` inside a `layer_<i>` module."""
    return path[-1] == "kernel" and any(p.startswith("layer_") for p in path)


class _ModelKey:
    """A hashable stand-in for one user model (identity), used where families cache per config."""

    def __init__(self, model):
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self.model).__name__} (user model)"


class ModelFamily(Family):
    """One user Flax model (following the protocol of this module's docstring) as a family, so the
    proxies, the compact inputs and genomes run on it unchanged."""

    name = "user_model"
    eznas_roles = None

    def __init__(self, model, input_ids: np.ndarray, params=None,
                 is_weight: Callable[[Tuple[str, ...]], bool] = default_is_weight):
        self.model = model
        self.key = _ModelKey(model)
        self._ids = np.asarray(input_ids)
        # the variables as model.apply takes them: {"params": tree}
        self._params = params if params is None or "params" in params else {"params": params}
        self._is_weight = is_weight

    def model_config(self, arch: Arch, config) -> Hashable:
        return self.key

    def build_model(self, model_config: Hashable):
        return self.model

    def is_proxy_weight(self, path: Tuple[str, ...]) -> bool:
        return bool(self._is_weight(tuple(path)))

    def _init(self, seed: int):
        import jax

        method = getattr(self.model, "init_all", None)
        variables = self.model.init(jax.random.PRNGKey(seed), self._ids[:1],
                                    **({"method": self.model.init_all} if method else {}))
        return {"params": variables["params"]}

    def param_shapes(self, model_config: Hashable):
        import jax

        if self._params is not None:
            return jax.eval_shape(lambda: self._params)
        return jax.eval_shape(lambda: self._init(0))

    def init_params(self, model_config: Hashable, seed: int):
        """The params given to `score_model`, else the model's own initialisers at `seed`."""
        return self._init(seed) if self._params is None else self._params


def _score_config(seed: int, sample_size: int, aggregate: str) -> ConfigDict:
    c = base_config()
    c.family = ModelFamily.name
    c.seed = seed
    c.inputs.sample_size = sample_size
    c.search.aggregate = aggregate
    return c


def score_model(model, proxies: Union[str, Sequence[str]], input_ids, *, params=None,
                seed: int = 0, batch: Optional[Mapping[str, np.ndarray]] = None,
                is_weight: Callable[[Tuple[str, ...]], bool] = default_is_weight,
                sample_size: int = 4096, aggregate: str = "sum") -> Dict[str, float]:
    """Scores one Flax model with proxies: genome strings (e.g. a searched one) and/or registered
    hand-crafted proxy names ("snip", "synflow", ...); returns {proxy: score}.

    input_ids [B, S] int: the text batch (see `text_batch` for real WikiText); batch: extra arrays
    the model's proxy_loss reads, besides input_ids. params: the model's variables ({"params": ...}
    or the params tree); default: `model.init` at `seed`. A proxy that fails raises (unlike `rank`,
    which logs and scores NaN), so a model that breaks the protocol says why.
    """

    spec = proxies if isinstance(proxies, str) else ",".join(proxies)
    fns = resolve_proxies(spec)
    ids = np.asarray(input_ids, np.int32)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq_len], got shape {ids.shape}")
    family = ModelFamily(model, ids, params, is_weight)
    config = _score_config(seed, sample_size, aggregate)
    arch = Arch(arch_id=type(model).__name__, config={}, score=float("nan"))
    ctx = ArchContext(family, arch, config, dict(batch or {}, input_ids=ids))
    if not any(family.is_proxy_weight(p) for p in _param_paths(ctx.param_shapes)):
        raise ValueError("no parameter is a proxy weight W: name the blocks `layer_<i>` (Dense "
                         "kernels inside them are W) or pass is_weight=")
    sown = check_model_protocol(model, ctx.params, ctx.batch, ctx.param_shapes, fns)
    out = {}
    for name, fn in fns.items():
        out[name] = float(fn(ctx))
        if not sown and not np.isfinite(out[name]):
            raise ModelProtocolError(f"proxy {name} is {out[name]} and the model sows no "
                                     f"intermediates: {_SOW_HINT}")
    return out


_SOW_HINT = ("call self.sow('intermediates', 'A' | 'H' | 'S', tensor) inside the blocks "
             "`layer_<i>` while proxy_loss runs (see lpzero_jax.api)")
_WORD_TABLE_NAMES = ("wte", "word", "tok", "embed_tokens")


def check_model_protocol(model, params, batch, param_shapes, proxies) -> set:
    """Checks a user model and batch before any proxy is scored; returns the names of the
    intermediates it sows (A, H, S). ModelProtocolError for a negative token id, an id beyond the
    rows of the word-embedding table (found by name, or the only `embedding` table), or a genome
    reading an intermediate the model never sows (it would score NaN or a wrong value)."""
    import jax

    ids = np.asarray(batch["input_ids"])
    if ids.size and ids.min() < 0:
        raise ModelProtocolError(f"input_ids holds negative id {int(ids.min())}: token ids are "
                                 "0 .. vocab_size - 1")
    tables = {p: shape for p, shape in ((path_names(k), v.shape) for k, v in
                                        jax.tree_util.tree_flatten_with_path(param_shapes)[0])
              if p and p[-1] == "embedding"}
    words = [s for p, s in tables.items() if any(n in "/".join(p).lower() for n in _WORD_TABLE_NAMES)]
    candidates = words or list(tables.values())
    vocab = candidates[0][0] if len(candidates) == 1 else None
    if vocab is not None and ids.size and ids.max() >= vocab:
        raise ModelProtocolError(f"input_ids holds id {int(ids.max())}, beyond the model's "
                                 f"vocabulary of {vocab} (ids 0 .. {vocab - 1})")

    def sown_tree():
        embeds = model.apply(params, batch["input_ids"], method=model.embed)
        _, state = model.apply(params, embeds, batch, method=model.proxy_loss,
                               mutable=["intermediates"])
        return state.get("intermediates", {})

    leaves = jax.tree_util.tree_flatten_with_path(jax.eval_shape(sown_tree))[0]
    sown = {n for k, _ in leaves for n in path_names(k) if n in ("A", "H", "S")}
    for name, proxy in proxies.items():
        genome = getattr(proxy.fn, "genome", None)
        missing = sorted(set(getattr(genome, "inputs", ())) & {"A", "H", "S"} - sown)
        if missing:
            raise ModelProtocolError(f"proxy {name} reads {', '.join(missing)}, which the model "
                                     f"never sows: {_SOW_HINT}")
    return sown


def _param_paths(tree) -> List[Tuple[str, ...]]:
    import jax


    return [path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def text_batch(batch_size: int = 4, seq_len: int = 64, seed: int = 0, tokenizer: str = "gpt2",
               vocab_size: Optional[int] = None) -> np.ndarray:
    """[batch_size, seq_len] token ids of real WikiText-2 validation text (the copy shipped with
    the package, or your data root's): GPT-2 BPE ids ("gpt2") or BERT WordPiece ids with [CLS] /
    [SEP] ("bert_uncased"). vocab_size: ids >= it are mapped to vocab_size - 1 (a small model)."""

    corpus = resolve_data_file("wikitext-2/valid.txt")
    if tokenizer == "gpt2":
        ids = text.lm_batch(corpus, batch_size, seq_len, seed, "gpt2")
    elif tokenizer == "bert_uncased":
        ids = text.bert_batch(corpus, batch_size, seq_len, seed)
    else:
        raise KeyError(f"unknown tokenizer {tokenizer!r}; known: gpt2, bert_uncased")
    return np.minimum(ids, vocab_size - 1) if vocab_size else ids
