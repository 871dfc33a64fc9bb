"""``python -m ner_core convert``, and the options every command that reads labelled data shares:
which format it is in (``--format``), which entity types to keep (``--labels``), and what to do
with spans that cut a word (``--cut``) or overlap (``--overlap``).

What reading changed is printed as the report's lines: ``convert`` and ``evaluate`` on stdout,
``train`` on stderr (its stdout is the run it saved).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .errors import UserError
from .formats import CUTS, FORMATS, OVERLAPS, Report, convert

DATA_HELP = ("labelled data: a file or folder in any format of 'convert' (found from its ending and "
             "content, or named with --format), a Hub dataset id owner/name (with --data-config), "
             "or 'conll2003' (the Hub's); default $NER_DATA_DIR")


def label_set(text: str) -> set[str]:
    """``--labels PER,ORG``: the entity types to keep.

    >>> sorted(label_set("PER, ORG,LOC"))
    ['LOC', 'ORG', 'PER']
    """
    labels = {label.strip() for label in text.split(",") if label.strip()}
    if not labels:
        raise argparse.ArgumentTypeError(f"expected entity types separated by commas, found {text!r}")
    return labels


def alignment_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--labels``, ``--cut`` and ``--overlap``: how labelled data is read."""
    parser.add_argument("--format", choices=FORMATS,
                        help="the format of the data (default: found from its ending and content)")
    parser.add_argument("--labels", type=label_set, metavar="PER,ORG,...",
                        help="keep only entities of these types; the others are dropped and counted")
    parser.add_argument("--cut", choices=CUTS, default="widen",
                        help="a span that cuts a word: widen it to the whole word (the default), "
                             "or refuse the file")
    parser.add_argument("--overlap", choices=OVERLAPS, default="longest",
                        help="nested or crossing spans: keep the longest (the default), or refuse "
                             "the file")


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` and ``--data-config`` with the options of ``alignment_arguments``."""
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--data-config", help="the configuration of a Hub dataset id given as --data")
    alignment_arguments(parser)


def read_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``load_labelled`` (and ``formats.read``) the flags give."""
    return {"labels": args.labels, "cut": args.cut, "overlap": args.overlap}


def data_options(args: argparse.Namespace) -> dict:
    """``read_options`` with the format and the Hub configuration, for ``load_labelled``."""
    return {"format": args.format, "data_config": args.data_config, **read_options(args)}


def data_flags(args: argparse.Namespace) -> list[str]:
    """The flags of ``data_options`` that were given, as a rebuild command repeats them.

    >>> data_flags(argparse.Namespace(format="doccano", data_config=None, labels={"PER", "ORG"},
    ...                               cut="widen", overlap="refuse"))
    ['--format', 'doccano', '--labels', 'ORG,PER', '--overlap', 'refuse']
    """
    flags = []
    for flag, value, default in (("--format", args.format, None),
                                 ("--data-config", args.data_config, None),
                                 ("--labels", args.labels and ",".join(sorted(args.labels)), None),
                                 ("--cut", args.cut, "widen"), ("--overlap", args.overlap, "longest")):
        if value != default:
            flags += [flag, value]
    return flags


def print_report(report: Report, file=None) -> None:
    """The report's lines: what was read, each change counted, its first cases with file:line."""
    for line in report.lines():
        print(line, file=file or sys.stdout)


def convert_parser(commands) -> None:
    parser = commands.add_parser(
        "convert", help="write labelled data in another format, every change counted",
        description="Read labelled data in one format and write it in another: "
                    f"{', '.join(FORMATS)}. Spans are put on whole words; what that changed "
                    "(spans widened, overlaps dropped, unknown types left out) is printed with "
                    "the first cases and their file:line. The output is written whole or not "
                    "at all.")
    parser.add_argument("input", help="the labelled file or folder to read")
    parser.add_argument("output", help="the file or folder to write")
    parser.add_argument("--to", choices=FORMATS,
                        help="the output's format (default: the one its ending names)")
    alignment_arguments(parser)
    parser.add_argument("--tag-column", type=int, metavar="N",
                        help="CoNLL: the column (0-based) holding the tag (default: the last)")
    parser.add_argument("--report", metavar="REPORT.json",
                        help="also write the report as JSON to this file")


def run_convert(args: argparse.Namespace) -> None:
    report_path = Path(args.report) if args.report else None
    if report_path is not None and not report_path.parent.is_dir():
        raise UserError(f"{report_path}: expected a file in an existing folder for --report, "
                        f"found no folder {report_path.parent}")
    options = read_options(args)
    if args.tag_column is not None:
        options["tag_column"] = args.tag_column
    report, written = convert(Path(args.input), args.output, to=args.to,
                              from_format=args.format, **options)
    print_report(report)
    if report_path is not None:
        _write_whole(report_path, json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.output} ({written})")


def _write_whole(path: Path, content: str) -> None:
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
