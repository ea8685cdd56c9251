"""The evaluation set: built from the corpus and the hand labels, reproducibly, within the allowed articles."""

from __future__ import annotations

import hashlib
import json

import pytest

from data import build_dataset as ds


@pytest.fixture(scope="module")
def subsets():
    return ds.build()


def test_the_committed_files_are_exactly_what_the_labels_and_corpus_build(subsets):
    for name, content in ds.render(subsets).items():
        assert (ds.OUT / name).read_text() == content, f"data/eval/{name} is stale: run python data/build_dataset.py"


def test_the_manifest_hashes_each_file(subsets):
    manifest = json.loads((ds.OUT / "manifest.json").read_text())
    for name in ("full.jsonl", "smoke.jsonl"):
        assert manifest["files"][name]["sha256"] == hashlib.sha256((ds.OUT / name).read_bytes()).hexdigest()


def test_the_set_has_the_labelled_articles_the_evaluation_needs(subsets):
    full = subsets["full"]
    assert sum(bool(e.companies) for e in full if e.is_about_business) >= 60
    assert sum(not e.is_about_business for e in full) >= 40
    directions = {c.stock_price_change for e in full for c in e.companies}
    assert directions == {"increase", "decrease", "none"}


def test_the_smoke_subset_is_small_and_mixed(subsets):
    smoke = subsets["smoke"]
    assert 5 <= len(smoke) <= 8
    assert any(e.companies for e in smoke) and any(not e.is_about_business for e in smoke)


def test_only_articles_numbered_up_to_300_are_read(tmp_path):
    with pytest.raises(ValueError, match="blind test set"):
        ds.read_article(tmp_path, "business/301")


def test_no_label_names_an_article_above_300():
    assert all(int(key.split("/")[1]) <= ds.LAST_LABELLED_NUMBER for key in ds.load_labels())


def test_a_windows_1252_article_is_decoded():
    assert "a \u00a315.8m" in ds.read_article(ds.corpus_dir(), "sports/199")


def test_references_are_the_headline_and_the_standfirst():
    text = "Ad sales boost profit\n\nProfits jumped 76%.\n\nThe firm said more."
    label = ds.Label(is_about_business=True, companies=[])
    got = ds.example("business/001", text, label)
    assert (got.title_reference, got.summary_reference) == ("Ad sales boost profit", "Profits jumped 76%.")


def test_a_company_missing_from_the_article_is_refused():
    label = ds.Label(is_about_business=True, companies=[
        ds.CompanyLabel(name="Globex", aliases=[], stock_price_change="none")])
    with pytest.raises(ValueError, match="Globex"):
        ds.example("business/001", "Acme up\n\nAcme rose.\n\nMore.", label)


def test_exact_duplicates_are_refused(tmp_path, monkeypatch):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.yaml").write_text(
        "business/007: {is_about_business: true, companies: []}\n"
        "business/253: {is_about_business: true, companies: []}\n")
    (tmp_path / "subsets.yaml").write_text("smoke: []\n")
    monkeypatch.setattr(ds, "LABELS", labels)
    monkeypatch.setattr(ds, "DATA", tmp_path)
    with pytest.raises(ValueError, match="business/253 is an exact duplicate of business/007"):
        ds.build()


def test_dev_and_test_split_the_set_in_halves_per_stratum_with_the_smoke_set_in_dev(subsets):
    dev, test = ({e.id for e in subsets[name]} for name in ("dev", "test"))
    assert not dev & test and dev | test == {e.id for e in subsets["full"]}
    assert {e.id for e in subsets["smoke"]} <= dev
    for stratum in {ds.stratum(e) for e in subsets["full"]}:
        counts = [sum(ds.stratum(e) == stratum for e in subsets[name]) for name in ("dev", "test")]
        assert 0 <= counts[0] - counts[1] <= 2, (stratum, counts)  # smoke articles may tip a small stratum


def _shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_prompt_example_or_flow_default_quotes_a_test_article(subsets):
    from news_reader.extraction.prompting import PROMPTS_DIR

    repo = ds.DATA.parent
    tuned = [*PROMPTS_DIR.glob("*.jinja2"), *(repo / "news_reader" / "evaluation" / "prompts").glob("*.jinja2"),
             *(repo / "flows").rglob("flow.dag.yaml"), *(repo / "flows").rglob("data.jsonl"),
             repo / "flows" / "sample_article.txt"]
    test_words = set().union(*(_shingles(e.article) for e in subsets["test"]))
    for path in tuned:
        assert not _shingles(path.read_text()) & test_words, f"{path} quotes a test article"
