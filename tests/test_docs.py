"""The documentation: links and images resolve, the README stays short, the pictures' data match the tables."""

import csv
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_LIMIT = 12 * 1024  # bytes; the front door stays short, everything else lives in docs/
IMAGE_LIMIT = 200 * 1024  # bytes per committed picture

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (whose brackets are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCED.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set:
    """Every heading anchor of a page (repeated headings get -1, -2, ... as on GitHub)."""
    seen, out = {}, set()
    for line in FENCED.sub("", page.read_text()).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def relative_links(page: Path):
    """(target path, anchor or None) of every relative link and image on a page."""
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        yield (page.parent / path).resolve() if path else page, anchor or None


def test_slug_follows_github():
    assert slug("Single run, seed 42 (the detail behind the seeds study)") == \
        "single-run-seed-42-the-detail-behind-the-seeds-study"
    assert slug("The engine's rate on the zoo") == "the-engines-rate-on-the-zoo"
    assert slug("Many hosts (`jax.distributed`)") == "many-hosts-jaxdistributed"


def test_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Here\n")
    page.write_text("[ok](b.md#here) [gone](c.md) `[code](x.md)`\n```\n[block](y.md)\n```\n")
    links = list(relative_links(page))
    assert links == [(tmp_path / "b.md", "here"), (tmp_path / "c.md", None)]
    assert "here" in anchors(tmp_path / "b.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for path, anchor in relative_links(page):
        if not path.exists():
            broken.append(f"{path.relative_to(ROOT)} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{path.relative_to(ROOT)}#{anchor} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_every_docs_page_is_reached_from_the_readme():
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        todo += [p for p, _ in relative_links(page) if p.suffix == ".md" and p.exists()]
    assert set(PAGES) <= reached, sorted(str(p.relative_to(ROOT)) for p in set(PAGES) - reached)


def test_readme_is_short_and_images_are_small():
    assert (ROOT / "README.md").stat().st_size <= README_LIMIT
    images = {p for page in PAGES for p, _ in relative_links(page) if p.suffix == ".png"}
    assert images  # the README's picture at least
    for image in images:
        assert image.stat().st_size < IMAGE_LIMIT, image


def test_no_machine_paths_in_the_docs():
    for page in PAGES:
        found = re.findall(r"(?<![\w.])/(?:work|tmp|root|home)/\S*", page.read_text())
        assert not found, (page.relative_to(ROOT), found)


def read_rows(name: str):
    with (ROOT / "docs" / "results" / "data" / name).open(newline="") as f:
        return list(csv.DictReader(f))


def table_rows(page: str):
    """The cells of every markdown table row of a results page, emphasis removed."""
    text = (ROOT / "docs" / "results" / page).read_text()
    return [[c.strip().replace("*", "") for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ")]


def test_study_picture_data_match_the_study_table():
    rows = read_rows("study_5seeds.csv")
    assert len(rows) == 7 * 6
    cells = {c for row in table_rows("study.md") for c in row}
    for r in rows:
        figure = f"{r['rho_mean']} ± {r['rho_sd']} / {r['tau_mean']} ± {r['tau_sd']}"
        assert any(figure in c for c in cells), r


def test_transfer_picture_data_match_the_transfer_table():
    rows = read_rows("transfer.csv")
    table = {row[0]: row[1:] for row in table_rows("transfer.md")}
    column = {"flexibert": 0, "gpt2": 1, "llama": 2}
    for r in rows:
        name = f"{r['proxy']} (`{r['genome']}`)" if r["genome"] else r["proxy"]
        assert table[name][column[r["benchmark"]]] == f"{r['rho']} / {r['tau']}", r


REPO_PATH = re.compile(r"(?<![\w./-])((?:lpzero_jax|tests|experiments|scripts|examples|third_party)/[\w./*-]*)")


def test_every_repository_path_named_in_the_docs_exists():
    """Paths in prose and commands (`lpzero_jax/...`, `experiments/...`, ...) name files that exist."""
    missing = []
    for page in PAGES:
        for name in REPO_PATH.findall(page.read_text().replace("<", " ")):
            name = name.rstrip(".,")
            if not (any(ROOT.glob(name)) if "*" in name else (ROOT / name).exists()):
                missing.append(f"{page.relative_to(ROOT)}: {name}")
    assert not missing, missing


PACKAGE_REF = re.compile(
    r"`(?:lpzero_jax/)?((?:benchmarks|configs|data|engine|expression|families|inputs|models|modes|proxies|search|study)"
    r"/[\w/]*?)(\.py|\.json|\.txt)?(?:\.(\w+))?[`\s(,]")


def test_every_package_module_and_name_the_docs_cite_exists():
    """`engine/passes.py`, `models/softmax.row_nll`, ...: the module (and the name in it) exist in lpzero_jax/."""
    missing = []
    for page in PAGES:
        for module, suffix, name in PACKAGE_REF.findall(page.read_text()):
            base = ROOT / "lpzero_jax" / module
            source = base.with_suffix(".py")
            if suffix in (".json", ".txt"):
                found = base.with_suffix(suffix).exists()
            else:
                found = base.is_dir() or (source.exists() and (
                    not name or re.search(rf"\b{name}\b", source.read_text()) is not None))
            if not found:
                missing.append(f"{page.relative_to(ROOT)}: {module}{suffix}{'.' + name if name else ''}")
    assert not missing, missing


def test_ci_runs_the_readme_install_and_test_lines():
    """.ci/run installs with the README's install line and calls the README's test command."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_block = re.search(r"## Test\s+```bash\n(.*?)\n```", readme, re.DOTALL).group(1).strip()
    assert ci[-1].strip() == test_block
    assert 'pip install ".[test]"' in readme and 'pip install ".[test]"' in ci
