"""`news-reader eval`: check an experiment record against the quality gate, compare recorded runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError

from news_reader.evaluation.gate import Thresholds, check
from news_reader.evaluation.records import ExperimentRecord
from news_reader.extraction.errors import NewsReaderError, validation_message

# Exit codes: 0 passed, 1 a check failed, 2 the input could not be used.
_UNUSABLE = 2


@click.group("eval")
def evaluation() -> None:
    """Quality gate and comparison of experiment records."""


@evaluation.command("gate")
@click.argument("record", type=click.Path(path_type=Path))
@click.option("--thresholds", type=click.Path(path_type=Path), default=Path("evaluations/thresholds.yaml"),
              show_default=True, help="Versioned YAML file of thresholds per dataset.")
@click.option("--set", "set_name", metavar="NAME", help="Threshold set (default: the record's dataset name).")
@click.option("--report", "report_file", type=click.Path(path_type=Path), help="Also write the report to FILE.")
def gate_command(record: Path, thresholds: Path, set_name: str | None, report_file: Path | None) -> None:
    """Check RECORD against the quality gate.

    Exit 0 when it passes, 1 when a check fails, 2 when an input cannot be used.
    """
    try:
        result = check(_load(record), Thresholds.load(thresholds), set_name)
    except NewsReaderError as error:
        _fail(str(error))
    text = result.report()
    click.echo(text)
    if report_file:
        try:
            report_file.parent.mkdir(parents=True, exist_ok=True)
            report_file.write_text(text + "\n")
        except OSError as error:
            _fail(f"{report_file}: cannot write report: {error.strerror}")
    sys.exit(0 if result.passed else 1)


@evaluation.command("compare")
@click.argument("paths", metavar="RECORD_OR_DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_stem", type=click.Path(path_type=Path), default=Path("evaluations/reports/compare"),
              show_default=True, help="Output path without suffix; writes .md and .png.")
@click.option("--allow-mixed-datasets", is_flag=True, help="Compare runs over different datasets anyway.")
def compare_command(paths: tuple[Path, ...], out_stem: Path, allow_mixed_datasets: bool) -> None:
    """Compare recorded runs side by side.

    RECORD_OR_DIR is a record, or a folder whose *.json files are records.
    """
    from news_reader.evaluation.report import compare  # matplotlib takes a while to import; only compare needs it

    files = [f for path in paths for f in (sorted(path.glob("*.json")) if path.is_dir() else [path])]
    if not files:
        _fail(f"no *.json records in {', '.join(map(str, paths))}")
    try:
        md, png = compare([_load(f) for f in files], out_stem, allow_mixed=allow_mixed_datasets)
    except NewsReaderError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"{error.filename}: cannot write: {error.strerror}")
    click.echo(md.read_text())
    click.echo(f"wrote {md}\nwrote {png}")


def _load(path: Path) -> ExperimentRecord:
    try:
        return ExperimentRecord.load(path)
    except OSError as error:
        raise NewsReaderError(f"{path}: cannot read record: {error.strerror}") from error
    except ValidationError as error:
        raise NewsReaderError(f"{path}: not an experiment record: {validation_message(error, 'file')}") from error


def _fail(message: str) -> NoReturn:
    click.echo(f"news-reader: {message}", err=True)
    sys.exit(_UNUSABLE)
