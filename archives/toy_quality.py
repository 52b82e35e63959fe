"""Archive precision on a toy pool, from its toy_truth/*.parquet (which things and stuff each image holds)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

from archives.archive import list_archives


def load_truth(truth_dir: Path | str) -> dict[str, set[str]]:
    """Per pool key, the set of thing and stuff names the image holds."""
    files = sorted(Path(truth_dir).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no toy truth parquet files in {truth_dir}")
    truth: dict[str, set[str]] = {}
    for path in files:
        for row in pq.read_table(path, columns=["key", "things", "stuff"]).to_pylist():
            truth[row["key"]] = set(row["things"]) | set(row["stuff"])
    return truth


def archive_precision(run_dir: Path | str, truth_dir: Path | str) -> list[dict]:
    """Per archive: precision (the share of the items it holds that show the concept), pool positives, rarity.

    Precision is judged on what the archive holds, hits / items, also when it holds fewer than the k asked for.
    A concept is rare when the pool holds fewer images of it than the archive's k, so precision cannot reach 1;
    `capped` is then the share of those images found: hits / min(k, positives).
    """
    truth = load_truth(truth_dir)
    rows = []
    for archive in list_archives(run_dir):
        name = archive.concept
        keys = archive.items.column("key").to_pylist()
        hits = sum(name in truth.get(key, ()) for key in keys)
        positives = sum(name in labels for labels in truth.values())
        k = int(archive.query.get("k", len(keys)))
        rows.append(
            {
                "concept": name,
                "k": k,
                "items": len(keys),
                "hits": hits,
                "precision": hits / len(keys) if keys else 0.0,
                "positives": positives,
                "capped": hits / min(k, positives) if positives else None,
                "rare": positives < k,
                "strength": archive.query.get("strength"),
                "standouts": archive.query.get("standouts"),
                "weak": archive.query.get("weak"),
            }
        )
    return rows


def precision_table(rows: list[dict]) -> str:
    """Common concepts first, then rare and absent ones apart, as a markdown table."""
    header = (
        "| concept | k | items | precision | pool positives | found / min(k, positives) | strength | standouts | weak |"
    )
    lines = [header, "|" + "---|" * 9]
    for group in (False, True):
        for r in (r for r in rows if r["rare"] == group):
            capped = "-" if r["capped"] is None else f"{r['capped']:.2f}"
            lines.append(
                f"| {r['concept']}{' (rare)' if group else ''} | {r['k']} | {r['items']} | {r['precision']:.2f} "
                f"| {r['positives']} | {capped} | {r['strength']:.2f} | {r['standouts']} "
                f"| {'yes' if r['weak'] else 'no'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m archives.toy_quality RUN_DIR TRUTH_DIR [--json]`: print the precision table of an archive run."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run_dir", help="archives/{model_id}/{run}/ folder")
    parser.add_argument("truth_dir", help="the toy world's toy_truth/ folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = archive_precision(args.run_dir, args.truth_dir)
    print(json.dumps(rows, indent=2) if args.json else precision_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
