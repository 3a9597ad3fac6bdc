"""The search world: a second reference environment, of the paper's own kind.

A seeded knowledge base of made-up entities and relations, a BM25 search engine over its
passages (``bm25s``) that loses passages on purpose, and multi-hop questions answered with
``<search>`` and ``<answer>``. An exact oracle gives every state's optimum and every plan's
chance of success. After training, :func:`reference.search.kb.drift` changes the knowledge
base under the trained model (facts updated, entities renamed, passages removed), which is
what the trust loop is shown on. Pure Python beside ``bm25s``; no torch.
"""
