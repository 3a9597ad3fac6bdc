"""The documented default chat template, for models whose tokenizer has none.

Each message is written as ``<|role|>\\ncontent\\n``; the generation prompt is
``<|assistant|>\\n``. Content given as a list of parts keeps its text parts.
"""

from __future__ import annotations

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
