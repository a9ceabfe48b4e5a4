"""Why a product is in a result, as data: ``Reason(kind, text)``, with the search's own numbers apart.

``text`` is what a shopper may read ("matches cheese", "you often buy cheese"); ``rank`` (keyword or semantic
rank among the candidates) and ``score`` (cosine similarity, basket count) are for staff tools, the CLI and the
eval, and are never written into the text, so nothing has to strip them out again.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# keyword: BM25 matched the query's words; semantic: near in meaning; popular: browsing by popularity;
# personal: from the shopper's own history (rerank.py); similar: an embedding neighbour of a product;
# bought_together: co-occurs in baskets; facts: catalogue facts shown for a comparison; segment: popular in the
# shopper's customer segment; shoppers_like_you: bought by shoppers with similar baskets (collaborative filtering)
ReasonKind = Literal["keyword", "semantic", "popular", "personal", "similar", "bought_together", "facts", "segment",
                     "shoppers_like_you"]  # fmt: skip


class Reason(BaseModel):
    kind: ReasonKind
    text: str
    rank: int | None = None
    score: float | None = None

    @property
    def detail(self) -> str:
        """The text with its numbers, for staff ("matches cheese (keyword rank 2)")."""
        numbers = [f"{self.kind} rank {self.rank}" if self.rank is not None else ""]
        numbers.append(f"score {self.score:.2f}" if self.score is not None else "")
        shown = ", ".join(n for n in numbers if n)
        return f"{self.text} ({shown})" if shown else self.text
