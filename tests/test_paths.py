"""Data resolution order (explicit path, data_root / $LPZERO_DATA, ../shared/data, package data) and
the package's own copies of the third-party data (unmodified, readable without ../shared)."""

import filecmp
import gzip
import lzma

import pytest

from lpzero_jax import paths, text
from lpzero_jax.benchmarks.unpack import unpack_packaged_data


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """No $LPZERO_DATA and no ../shared/data: what a bare install sees."""
    monkeypatch.delenv(paths.ENV_DATA_ROOT, raising=False)
    monkeypatch.setattr(paths, "default_data_root", lambda: tmp_path / "no_shared")


def test_bare_install_resolves_every_data_file_to_the_package(bare):
    for relative, packed in paths.PACKAGED.items():
        assert paths.resolve_data_file(relative) == paths.PACKAGE_DATA / packed
    with pytest.raises(paths.DataNotFoundError, match="not shipped with the package"):
        paths.resolve_data_file("wikitext-103/train.txt")


def test_order_explicit_path_then_data_root_then_env_then_shared(monkeypatch, tmp_path):
    root, env, shared = (tmp_path / n for n in ("root", "env", "shared"))
    for d in (root, env, shared):
        (d / "wikitext-2").mkdir(parents=True)
        (d / "wikitext-2" / "valid.txt").write_text(d.name)
    monkeypatch.setattr(paths, "default_data_root", lambda: shared)
    monkeypatch.delenv(paths.ENV_DATA_ROOT, raising=False)
    rel = "wikitext-2/valid.txt"
    assert paths.resolve_data_file(rel) == shared / rel
    monkeypatch.setenv(paths.ENV_DATA_ROOT, str(env))
    assert paths.resolve_data_file(rel) == env / rel
    assert paths.resolve_data_file(rel, str(root)) == root / rel
    assert paths.resolve_data_file(rel, str(root), str(shared / rel)) == shared / rel
    # a root the user gave that lacks the file is an error, not a silent fallback to the package
    with pytest.raises(paths.DataNotFoundError, match="under the data root you gave"):
        paths.resolve_data_file("flexibert/BERT_benchmark.json", str(root))
    with pytest.raises(paths.DataNotFoundError, match="given for"):
        paths.resolve_data_file(rel, None, str(tmp_path / "missing.txt"))


def test_shipped_copies_are_the_shared_files_unmodified(data_root):
    if not (paths.default_data_root() / "wikitext-2").is_dir():
        pytest.skip("needs ../shared/data to compare with")
    shared = paths.default_data_root()
    for rel in ("flexibert/BERT_benchmark.json", "wikitext-2/valid.txt", "wikitext-2/test.txt"):
        packed = paths.PACKAGE_DATA / paths.PACKAGED[rel]
        opener = gzip.open if packed.suffix == ".gz" else lzma.open
        with opener(packed, "rb") as f:
            assert f.read() == (shared / rel).read_bytes(), rel


def test_every_shipped_file_has_its_licence_and_source_beside_it():
    for packed in list(paths.PACKAGED.values()) + ["bert_uncased/vocab.txt.gz"]:
        folder = (paths.PACKAGE_DATA / packed).parent
        assert (paths.PACKAGE_DATA / packed).is_file(), packed
        assert (folder / "LICENSE").stat().st_size > 500, folder
        assert (folder / "SOURCE.md").is_file(), folder


def test_unpacked_data_root_has_the_plain_files(tmp_path):
    root = unpack_packaged_data(tmp_path)
    with lzma.open(paths.PACKAGE_DATA / "wikitext-2/valid.txt.xz", "rb") as f:
        assert (root / "wikitext-2/valid.txt").read_bytes() == f.read()
    assert len(list((root / "gpt2_wt103/random_GPT2_wt103").glob("config_*/j*/model_config.yaml"))) == 200
    if (paths.default_data_root() / "flexibert").is_dir():
        assert filecmp.cmp(root / "flexibert/BERT_benchmark.json",
                           paths.default_data_root() / "flexibert/BERT_benchmark.json", shallow=False)


def test_bert_vocab_ships_with_the_package(monkeypatch):
    monkeypatch.delenv(text.ENV_BERT_VOCAB, raising=False)
    assert text.resolve_bert_vocab() == paths.BERT_VOCAB
    tok = text.load_tokenizer("bert_uncased")
    assert len(tok) == 30522
    assert tok.convert_tokens_to_ids(["[CLS]", "[SEP]", "the"]) == [101, 102, 1996]


def test_compressed_corpus_reads_like_the_plain_one(data_root):
    packed = paths.PACKAGE_DATA / paths.PACKAGED["wikitext-2/valid.txt"]
    assert text.read_corpus(packed) == text.read_corpus(data_root / "wikitext-2/valid.txt")
