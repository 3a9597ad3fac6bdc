"""The installed entry points load: a stale path would silently drop the CPU W4A16 plugin (vLLM skips a
plugin it cannot import) or break the ``foresight`` command."""

from __future__ import annotations

from importlib.metadata import entry_points


def test_the_cpu_wna16_plugin_entry_point_loads_the_register_function() -> None:
    from engine import cpu_wna16

    [ep] = [e for e in entry_points(group="vllm.general_plugins") if e.name == "foresight_cpu_wna16"]
    assert ep.load() is cpu_wna16.register


def test_the_lifeline_plugin_entry_point_loads_the_register_function() -> None:
    from engine import lifeline

    [ep] = [e for e in entry_points(group="vllm.general_plugins") if e.name == "foresight_lifeline"]
    assert ep.load() is lifeline.register


def test_the_foresight_console_script_loads_the_cli() -> None:
    from foresight.cli import main

    [ep] = [e for e in entry_points(group="console_scripts") if e.name == "foresight"]
    assert ep.load() is main
