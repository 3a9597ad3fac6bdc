"""The search engine: BM25 (``bm25s``) over the knowledge base's passages, imperfect on purpose.

A search ranks the corpus by BM25 (ties in corpus order) and takes the top :data:`CANDIDATES`
passages that share a word with the query; each of them is lost with probability
:data:`LOSS` (a seeded draw per search: an index shard that did not answer), and the first
:data:`TOP_K` survivors are returned. So whether a passage comes back is random, and its
probability is exact (:meth:`Retriever.inclusion`): what a query returns, and how likely,
is what the search model's world model learns. One passage a search (``TOP_K`` 1): the environment,
the turn format and the oracle's step accounting assume it.
"""

from __future__ import annotations

import random
from functools import lru_cache
from math import comb

import bm25s

from reference.search.kb import KnowledgeBase, split_document

CANDIDATES = 4
TOP_K = 1
LOSS = 0.3


def _words(text: str) -> list[str]:
    return [w for w in text.lower().replace(".", " ").split() if w]


def survival(rank: int, loss: float = LOSS, top_k: int = TOP_K) -> float:
    """The probability that the candidate at 1-based ``rank`` is returned: it survives and fewer than
    ``top_k`` of the ``rank - 1`` candidates above it do."""
    keep = 1.0 - loss
    above = rank - 1
    fewer = sum(comb(above, j) * keep**j * loss ** (above - j) for j in range(min(top_k, above + 1)))
    return keep * fewer


class Retriever:
    """BM25 over one knowledge base's corpus (one index, built once)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._bm25 = bm25s.BM25()
        texts = [split_document(d)[0] for d in kb.passages]  # the words, not the document id
        self._bm25.index(bm25s.tokenize(texts, stopwords=None, show_progress=False),
                         show_progress=False)
        self.candidates = lru_cache(maxsize=None)(self._candidates)

    def _candidates(self, query: str) -> tuple[str, ...]:
        """The noise-free top :data:`CANDIDATES` passages for ``query`` (score > 0, ties in corpus order)."""
        words = [w for w in _words(query) if w in self._bm25.vocab_dict]
        if not words:
            return ()
        scores = self._bm25.get_scores(words)
        order = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-float(scores[i]), i))
        return tuple(self.kb.passages[i] for i in order[:CANDIDATES])

    def rank(self, query: str, passage: str) -> int | None:
        """1-based rank of ``passage`` (a document) among the query's candidates; None if it is not one."""
        cands = self.candidates(query)
        return cands.index(passage) + 1 if passage in cands else None

    def inclusion(self, query: str, passage: str) -> float:
        """Exact probability that one search for ``query`` returns ``passage``."""
        rank = self.rank(query, passage)
        return 0.0 if rank is None else survival(rank)

    def search(self, query: str, rng: random.Random) -> list[str]:
        """One noisy search: the surviving candidates, at most :data:`TOP_K`."""
        kept = [p for p in self.candidates(query) if rng.random() >= LOSS]
        return kept[:TOP_K]
