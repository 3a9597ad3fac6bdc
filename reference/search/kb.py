"""The knowledge base: entities, relations, facts and the passages that state them.

Every entity has one value for every relation (another entity): ``Bak mentor Dor`` says Bak's
mentor is Dor. Each fact is stated by one passage, except a seeded share of facts whose passage
is *missing* from the corpus; another share has a *misleading* passage beside the true one (the
same subject and relation, a wrong value). A passage in the corpus is a document: its text and its id,
``Bak mentor Dor #17`` (a search result names its source, as a search engine's does; the id is what a
model checks its history for — one token against one token). :func:`drift` makes the world that changed
after training: a rewritten passage is a new document with a new id. Pure Python.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

RELATIONS: tuple[str, ...] = ("mentor", "rival", "partner")
KB_SEED = 20261206
N_ENTITIES = 40
MISSING_SHARE = 0.12
MISLEADING_SHARE = 0.12

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _names(rng: random.Random, count: int, taken: frozenset[str] = frozenset()) -> list[str]:
    """``count`` distinct capitalised consonant-vowel-consonant names not in ``taken``."""
    pool = sorted({f"{a}{v}{b}".capitalize() for a in _CONSONANTS for v in _VOWELS for b in _CONSONANTS} - taken)
    return rng.sample(pool, count)


# the names every knowledge base draws its entities from (whole tokens of the search model's tokenizer)
ENTITY_NAMES: tuple[str, ...] = tuple(sorted(_names(random.Random(KB_SEED), N_ENTITIES)))


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    value: str

    @property
    def text(self) -> str:
        """What a passage stating this fact says (without its document id)."""
        return passage(self.subject, self.relation, self.value)


def passage(subject: str, relation: str, value: str) -> str:
    return f"{subject} {relation} {value}"


def document(text: str, doc_id: int) -> str:
    """A passage as the corpus holds it and a search returns it: ``Bak mentor Dor #17``."""
    return f"{text} #{doc_id}"


def split_document(doc: str) -> tuple[str, int]:
    """``(text, id)`` of a document; ValueError if it has no id."""
    text, sep, tail = doc.rpartition(" #")
    if not sep or not tail.isdigit():
        raise ValueError(f"not a document: {doc!r}")
    return text, int(tail)


@dataclass(frozen=True)
class KnowledgeBase:
    """Facts (one value per entity and relation) and the corpus of passages a search reads."""

    entities: tuple[str, ...]
    facts: dict[tuple[str, str], str] = field(hash=False)
    # documents (:func:`document`) in corpus order (the order breaks BM25's ties): true passages,
    # misleading ones, not the missing
    passages: tuple[str, ...] = ()

    def value(self, subject: str, relation: str) -> str:
        return self.facts[(subject, relation)]

    def fact(self, subject: str, relation: str) -> Fact:
        return Fact(subject, relation, self.value(subject, relation))

    @cached_property
    def _documents(self) -> dict[str, str]:
        return {split_document(d)[0]: d for d in self.passages}

    def doc(self, fact: Fact) -> str | None:
        """The document stating ``fact`` (None: its passage is missing)."""
        return self._documents.get(fact.text)

    def stated(self, fact: Fact) -> bool:
        """Whether the corpus holds the fact's passage (else it is missing)."""
        return fact.text in self._documents


def generate(seed: int = KB_SEED, entities: tuple[str, ...] = ENTITY_NAMES) -> KnowledgeBase:
    """The seeded knowledge base the search model is trained on."""
    rng = random.Random(seed)
    facts = {(e, r): rng.choice([o for o in entities if o != e]) for e in entities for r in RELATIONS}
    keys = sorted(facts)
    rng.shuffle(keys)
    n_missing, n_misleading = int(len(keys) * MISSING_SHARE), int(len(keys) * MISLEADING_SHARE)
    missing = set(keys[:n_missing])
    misleading = keys[n_missing : n_missing + n_misleading]
    corpus = [passage(e, r, v) for (e, r), v in facts.items() if (e, r) not in missing]
    for e, r in misleading:
        wrong = rng.choice([o for o in entities if o not in (e, facts[(e, r)])])
        corpus.append(passage(e, r, wrong))
    rng.shuffle(corpus)
    return KnowledgeBase(tuple(entities), facts, tuple(document(t, i) for i, t in enumerate(corpus)))


@dataclass(frozen=True)
class Drift:
    """How the world changed after training."""

    updated: frozenset[tuple[str, str]]  # facts with a new value (and passage)
    renamed: dict[str, str] = field(hash=False)  # old name -> new name
    removed: frozenset[str] = frozenset()  # documents gone from the corpus (in the new world's names)


# the default change: about half the held-out questions touch a changed fact or a removed answer passage
DRIFT_UPDATED, DRIFT_RENAMED, DRIFT_REMOVED = 0.1, 0.05, 0.1


def drift(kb: KnowledgeBase, seed: int = 1, updated: float = DRIFT_UPDATED, renamed: float = DRIFT_RENAMED,
          removed: float = DRIFT_REMOVED) -> tuple[KnowledgeBase, Drift]:
    """The knowledge base after the world moved: a share of facts updated (their passage says the new
    value), a share of entities renamed (everywhere: facts, passages, questions), a share of the
    remaining passages removed. A passage whose text changed is a new document (a new id, after the
    old world's last). Pure and seeded."""
    rng = random.Random(seed)
    facts = dict(kb.facts)
    keys = sorted(facts)
    changed = frozenset(rng.sample(keys, int(len(keys) * updated)))
    for e, r in sorted(changed):
        facts[(e, r)] = rng.choice([o for o in kb.entities if o not in (e, facts[(e, r)])])
    old = rng.sample(sorted(kb.entities), int(len(kb.entities) * renamed))
    new = _names(random.Random(seed + 7), len(old), taken=frozenset(ENTITY_NAMES))
    names = dict(zip(sorted(old), new, strict=True))

    def rn(e: str) -> str:
        return names.get(e, e)

    rewritten: list[tuple[str, str, int]] = []  # (new text, old text, id) in corpus order
    for doc in kb.passages:
        old_text, doc_id = split_document(doc)
        s, r, v = old_text.split(" ")
        if (s, r) in changed and kb.facts[(s, r)] == v:
            v = facts[(s, r)]
        rewritten.append((passage(rn(s), r, rn(v)), old_text, doc_id))
    kept = {text for text, old_text, _ in rewritten if text == old_text}
    corpus: list[str] = []
    texts: set[str] = set()
    next_id = 1 + max((doc_id for *_, doc_id in rewritten), default=-1)
    for text, old_text, doc_id in rewritten:
        # an update may give a fact its misleading passage's value: one passage, the unchanged document
        if text in texts or (text != old_text and text in kept):
            continue
        if text != old_text:
            doc_id, next_id = next_id, next_id + 1
        texts.add(text)
        corpus.append(document(text, doc_id))
    gone = frozenset(rng.sample(corpus, int(len(corpus) * removed)))
    moved = KnowledgeBase(
        tuple(rn(e) for e in kb.entities),
        {(rn(e), r): rn(v) for (e, r), v in facts.items()},
        tuple(p for p in corpus if p not in gone),
    )
    return moved, Drift(frozenset((rn(e), r) for e, r in changed), names, gone)
