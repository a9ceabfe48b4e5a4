"""Build a development retrieval benchmark in BEIR layout from the Myntra fashion catalogue metadata.

    python -m eval.make_fashion_beir OUT_DIR [--source ../shared/data/fashion_product_styles] [--products 10000]
                                             [--queries 300] [--seed 7]

The data may not be committed (unclear licence), so this script reads it at run time and writes the benchmark to
OUT_DIR (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``). It is for tuning; it is not a test split.

How it is made (all labels come from the catalogue's own attribute columns; no human judged relevance):
- Corpus: a fixed-seed sample of ``--products`` rows with a display name. Indexed text = the display name only
  (e.g. "Puma Men Black Casual Shoes"); gender, article type, colour, usage go into ``metadata``, not the text.
- Queries: a fixed-seed sample of (gender, articleType, baseColour) combinations that have at least 3 products in
  the corpus. Each query is written from a template with a hand-made list of shopper words for the article type
  (e.g. "Casual Shoes" -> "sneakers" or "casual shoes", "Tshirts" -> "t-shirt" or "tee") and the gender
  (e.g. "for men", "women's"), e.g. "black sneakers for men". About 15% of queries get one typo (two adjacent
  letters swapped in the article word), to exercise typo handling.
- Relevance: 2 = same article type, gender and colour as the query; 1 = same article type and gender, another
  colour. Unisex products count for Men and Women queries. Everything else is 0 (not listed).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd

DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fashion_product_styles"

ARTICLE_WORDS = {  # articleType -> how shoppers might ask for it
    "Tshirts": ["t-shirt", "tee", "tshirt"], "Shirts": ["shirt"], "Casual Shoes": ["sneakers", "casual shoes"],
    "Watches": ["watch", "wrist watch"], "Sports Shoes": ["running shoes", "trainers", "sports shoes"],
    "Kurtas": ["kurta"], "Tops": ["top", "blouse"], "Handbags": ["handbag", "purse"], "Heels": ["high heels"],
    "Sunglasses": ["sunglasses", "shades"], "Wallets": ["wallet"], "Flip Flops": ["flip flops", "slippers"],
    "Sandals": ["sandals"], "Briefs": ["briefs", "underwear"], "Belts": ["belt"], "Backpacks": ["backpack",
    "rucksack"], "Socks": ["socks"], "Formal Shoes": ["formal shoes", "office shoes"],
    "Perfume and Body Mist": ["perfume", "body mist"], "Jeans": ["jeans", "denim"], "Shorts": ["shorts"],
    "Trousers": ["trousers", "pants"], "Flats": ["flats", "ballerinas"], "Dresses": ["dress"],
    "Sarees": ["saree", "sari"], "Earrings": ["earrings"], "Deodorant": ["deodorant", "deo"],
    "Track Pants": ["track pants", "joggers"], "Sweatshirts": ["sweatshirt"], "Caps": ["cap", "baseball cap"],
    "Sweaters": ["sweater", "jumper"], "Jackets": ["jacket"], "Ties": ["tie", "necktie"],
    "Clutches": ["clutch bag"], "Kurtis": ["kurti"], "Tunics": ["tunic"], "Leggings": ["leggings"],
    "Capris": ["capris", "cropped pants"], "Skirts": ["skirt"], "Nightdress": ["nightdress", "nightie"],
}  # fmt: skip
GENDER_WORDS = {
    "Men": ["for men", "men's", "mens"],
    "Women": ["for women", "women's", "ladies"],
    "Boys": ["for boys", "boys"],
    "Girls": ["for girls", "girls"],
    "Unisex": ["unisex"],
}
TEMPLATES = ["{colour} {article} {gender}", "{gender} {colour} {article}", "{article} in {colour} {gender}"]


def typo(word: str, rng: random.Random) -> str:
    letters = [i for i in range(len(word) - 1) if word[i].isalpha() and word[i + 1].isalpha()]
    if len(word) < 5 or not letters:
        return word
    i = rng.choice(letters[1:] or letters)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def query_text(gender: str, article: str, colour: str, rng: random.Random, typo_rate: float) -> str:
    article_word = rng.choice(ARTICLE_WORDS[article])
    if rng.random() < typo_rate:
        words = article_word.split()
        j = max(range(len(words)), key=lambda n: len(words[n]))
        words[j] = typo(words[j], rng)
        article_word = " ".join(words)
    text = rng.choice(TEMPLATES).format(
        colour=colour.lower(), article=article_word, gender=rng.choice(GENDER_WORDS[gender])
    )
    return " ".join(text.split())


def build(source: Path, out: Path, n_products: int, n_queries: int, seed: int, typo_rate: float = 0.15) -> dict:
    df = pd.read_csv(source / "styles_full.csv", dtype={"id": str})
    df = df.dropna(subset=["productDisplayName", "articleType", "gender", "baseColour"])
    df = df.sample(n=min(n_products, len(df)), random_state=seed).reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w") as f:
        for r in df.itertuples():
            meta = {
                "gender": r.gender,
                "department": r.masterCategory,
                "category": r.articleType,
                "subcategory": r.subCategory,
                "colour": r.baseColour,
                "usage": r.usage,
                "season": r.season,
            }
            meta = {k: v for k, v in meta.items() if isinstance(v, str)}
            f.write(json.dumps({"_id": r.id, "title": r.productDisplayName, "text": "", "metadata": meta}) + "\n")

    rng = random.Random(seed)
    combos = (
        df[df.articleType.isin(list(ARTICLE_WORDS))]
        .groupby(["gender", "articleType", "baseColour"])
        .size()
        .loc[lambda s: s >= 3]
    )
    picked = sorted(combos.index)
    rng.shuffle(picked)
    picked = picked[:n_queries]
    queries, qrels = [], []
    for n, (gender, article, colour) in enumerate(picked):
        qid = f"q{n:04d}"
        queries.append(
            {
                "_id": qid,
                "text": query_text(gender, article, colour, rng, typo_rate),
                "metadata": {"gender": gender, "articleType": article, "baseColour": colour},
            }
        )
        genders = {gender, "Unisex"} if gender in ("Men", "Women") else {gender}
        hits = df[(df.articleType == article) & df.gender.isin(genders)]
        for r in hits.itertuples():
            qrels.append((qid, r.id, 2 if r.baseColour == colour else 1))
    with (out / "queries.jsonl").open("w") as f:
        for q in queries:
            f.write(json.dumps(q) + "\n")
    with (out / "qrels" / "test.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, did, score in qrels:
            f.write(f"{qid}\t{did}\t{score}\n")
    return {"corpus": len(df), "queries": len(queries), "qrels": len(qrels), "out": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--products", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not (args.source / "styles_full.csv").is_file():
        raise SystemExit(f"No styles_full.csv in {args.source}; pass --source DIR.")
    print(json.dumps(build(args.source, args.out, args.products, args.queries, args.seed)))


if __name__ == "__main__":
    main()
