"""Pretrained models a user adds with one command (``foresight models add NAME``): where each comes from,
how it becomes a Hugging Face checkpoint under ``models/NAME``, and how a name finds it again."""
