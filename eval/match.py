"""``kefu eval match``: calibrate and measure the no-match rule (``retrieval/match.py``).

The development set is built at run time, never written to the repository:
- **carried**: names of the catalogue's own categories and product types of products it offers ("frozen
  pizza", "pnt btr", "jelly"; each "/"- or " - "-separated part on its own);
- **not carried**: other real shops' product types and names that a grocery shop does not sell: Myntra's
  fashion article types and product names (apparel, footwear, accessories) and Flipkart product names from
  non-grocery departments (footwear, clothing, jewellery, watches, computers, mobiles, furniture, automotive …),
  read from ``../shared/data`` (they may not be committed). A not-carried query that is also a carried name
  (the shop sells socks) is dropped. The labels are still noisy: a grocery chain does sell some general
  merchandise (gloves, sunglasses, batteries); read the examples.

Reports, for the configured thresholds: no-match recall on not-carried queries, the false-no-match rate on
carried ones, the share of not-carried answers that offer alternatives; and a sweep of ``min_cosine`` chosen on
one half (highest recall at most ``--max-false`` false no-match) and scored on the other.
"""

from __future__ import annotations

import ast
import csv
import random
import re
from pathlib import Path

import typer
from rich.progress import track

from kefu import store
from kefu.console import console, print_json, settings_of
from kefu.errors import KefuError
from retrieval.hybrid import ProductSearch
from retrieval.match import MatchEvidence, MatchRule, search_evidence

SELLABLE = {"in_stock": True, "min_price": 0.01}
OTHER_DEPARTMENTS = (
    "footwear",
    "clothing",
    "jewellery",
    "watches",
    "computers",
    "mobiles & accessories",
    "furniture",
    "automotive",
    "sunglasses",
    "bags, wallets & belts",
    "cameras & accessories",
)
FASHION = ("Apparel", "Footwear", "Accessories")
_PART = re.compile(r"\s*/\s*|\s+-\s+")


def carried_queries(store_path: Path) -> list[str]:
    with store.connect(store_path) as con:
        rows = con.execute(
            "SELECT DISTINCT category, product_type FROM products WHERE in_stock AND price >= 0.01"
        ).fetchall()
    names = set()
    for row in rows:
        for name in row:
            for part in _PART.split((name or "").lower()):
                if sum(ch.isalpha() for ch in part) >= 3:
                    names.add(part.strip(" .,&"))
    return sorted(names)


def not_carried_queries(data_dir: Path) -> list[str]:
    fashion = data_dir / "fashion_product_styles/styles_full.csv"
    flipkart = data_dir / "flipkart_products_1k/product.csv"
    if not fashion.is_file() or not flipkart.is_file():
        raise KefuError(f"Not found: {fashion} and {flipkart}; pass --others DIR, the folder holding them.")
    names = set()
    with fashion.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["masterCategory"] in FASHION]
    names |= {r["articleType"].lower() for r in rows}
    names |= {r["productDisplayName"].lower() for r in random.Random(0).sample(rows, 150)}
    with flipkart.open(newline="") as f:
        for r in csv.DictReader(f):
            tree = ast.literal_eval(r["product_category_tree"])[0].split(">>")
            if tree[0].strip().lower() in OTHER_DEPARTMENTS:
                names.add(r["product_name"].lower())
    return sorted(n.strip() for n in names if n.strip())


def _rates(rule: MatchRule, carried: list[MatchEvidence], other: list[MatchEvidence]) -> dict:
    false = sum(not rule.carried(e) for e in carried)
    caught = [e for e in other if not rule.carried(e)]
    return {
        "no_match_recall": round(len(caught) / len(other), 4) if other else None,
        "false_no_match": round(false / len(carried), 4) if carried else None,
        "alternatives_offered": round(sum(rule.related(e) for e in caught) / len(caught), 4) if caught else None,
    }


def calibrate(rule: MatchRule, carried: list[MatchEvidence], other: list[MatchEvidence], max_false: float,
              seed: int = 0) -> dict:  # fmt: skip
    """Choose ``min_cosine`` on one half (best recall with false no-match <= max_false); score it on the other."""
    rng = random.Random(seed)
    halves = []
    for items in (carried, other):
        items = items[:]
        rng.shuffle(items)
        halves.append((items[: len(items) // 2], items[len(items) // 2 :]))
    (c_fit, c_test), (o_fit, o_test) = halves
    grid = [round(0.30 + 0.02 * i, 2) for i in range(21)]
    sweep = []
    for t in grid:
        r = MatchRule(t, rule.min_cosine_all_words, rule.alternatives_cosine)
        sweep.append({"min_cosine": t, **_rates(r, c_fit, o_fit)})
    ok = [s for s in sweep if s["false_no_match"] is not None and s["false_no_match"] <= max_false]
    best = max(ok, key=lambda s: (s["no_match_recall"], -s["min_cosine"])) if ok else None
    chosen = MatchRule(best["min_cosine"], rule.min_cosine_all_words, rule.alternatives_cosine) if best else None
    return {
        "max_false_no_match": max_false,
        "chosen_min_cosine": best["min_cosine"] if best else None,
        "held_out": _rates(chosen, c_test, o_test) if chosen else None,
        "sweep_fit_half": sweep,
    }


def match_command(
    ctx: typer.Context,
    others: Path = typer.Option(Path("../shared/data"), "--others", help="Folder with the other shops' data."),
    sample: int = typer.Option(300, "--sample", min=10, help="Queries of each kind."),
    max_false: float = typer.Option(0.05, "--max-false", help="False no-match allowed when calibrating."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Calibrate the no-match rule: recall on things the shop does not carry, false no-match on things it does."""
    settings = settings_of(ctx)
    rng = random.Random(seed)
    carried, other = carried_queries(settings.store_path), not_carried_queries(others)
    other = [q for q in other if q not in set(carried)]
    carried, other = rng.sample(carried, min(sample, len(carried))), rng.sample(other, min(sample, len(other)))
    search, rule = ProductSearch.open(settings), MatchRule.from_settings(settings)
    evidence: dict[str, list[MatchEvidence]] = {"carried": [], "other": []}
    errors: dict[str, list[dict]] = {"false_no_match": [], "missed": []}
    for kind, queries in (("carried", carried), ("other", other)):
        for q in track(queries, description=kind, console=console):
            results = search.search(q, SELLABLE, k=rule.top).results
            ev = search_evidence(search, q, results, rule.top)
            evidence[kind].append(ev)
            wrong = (kind == "carried") != rule.carried(ev)
            key = "false_no_match" if kind == "carried" else "missed"
            if wrong and len(errors[key]) < 8:
                errors[key].append({"query": q, "cosine": ev.cosine, "coverage": ev.coverage,
                                    "top": results[0].title if results else None})  # fmt: skip
    report = {
        "kind": "match",
        "carried": len(carried),
        "not_carried": len(other),
        "rule": {
            "min_cosine": rule.min_cosine,
            "min_cosine_all_words": rule.min_cosine_all_words,
            "alternatives_cosine": rule.alternatives_cosine,
        },  # fmt: skip
        **_rates(rule, evidence["carried"], evidence["other"]),
        "calibration": calibrate(rule, evidence["carried"], evidence["other"], max_false, seed),
        "errors": errors,
    }
    if as_json:
        print_json(report)
        return
    console.print(f"no-match recall {report['no_match_recall']:.1%}, false no-match {report['false_no_match']:.1%}")
