"""The search model's whole tokens and chat template.

Entity names, relations, document ids (``#17``), percentages and the format's tags are whole tokens
(not special: they must survive detokenisation), as NumberReach's numbers are; names and ids get
fixed identity codes, so that "is this document already in my history?" is one token matched
against one token. The template renders the question (the first
user message) and every search result (tool messages) as ``<information>`` lines: the search model
sees its episode's whole history, and its one tool, ``search``, is built in (no tools block).
"""

from __future__ import annotations

from reference.search.kb import ENTITY_NAMES, RELATIONS
from reference.tokenizer import FORMAT_TAGS

WORDS = ("question:", "steps=", "steps", "search", "answer", "found", "rank", "nothing", "none", "not")
PERCENT_TOKENS = tuple(str(i) for i in range(101))
# document ids: the trained corpus's (120) and room for the documents a changed world adds
MAX_DOCUMENTS = 256
DOC_ID_TOKENS = tuple(f"#{i}" for i in range(MAX_DOCUMENTS))
_WORDS = (*WORDS, *RELATIONS, *ENTITY_NAMES, *DOC_ID_TOKENS)
# a word after a space is one token too (" mentor"), so a document costs four tokens (" #37" one)
WHOLE_TOKENS = (*FORMAT_TAGS, *_WORDS, *(f" {w}" for w in _WORDS), *PERCENT_TOKENS, *(f" {d}" for d in range(10)))
# an entity's (or document id's) two spellings share one fixed identity code (reference.train)
IDENTITY_GROUPS = tuple((name, f" {name}") for name in (*ENTITY_NAMES, *DOC_ID_TOKENS))

CHAT_TEMPLATE = (
    "{{ bos_token }}{% if tools %}{# search is built in: no tools block #}{% endif %}"
    "{% for message in messages %}{% if message['role'] in ['user', 'tool'] %}"
    "{% set c = message['content'] %}"
    "{% set text = (c if c is string else c | map(attribute='text') | join('')) | trim %}"
    "{% if text.startswith('<information>') %}{{ text }}"
    "{% else %}{{ '<information>' + text + '</information>' }}{% endif %}{{ '\n' }}"
    "{% endif %}{% endfor %}"
)
