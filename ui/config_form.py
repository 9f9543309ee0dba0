"""A form for a config class, built from its declarations (`vae_core.config.settings`): each
field's label, help, choices and section come from the config; validation stays in the config,
whose `ConfigError` the page shows when the form is submitted."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from vae_core.config import Config, Setting, settings


def float_step(value: float) -> float:
    """The +/- step of a number box: a tenth of the value's decade below 1 (1e-4 for a learning
    rate of 1e-3), 0.1 otherwise."""
    return 10.0 ** (math.floor(math.log10(value)) - 1) if 0 < value < 1 else 0.1


def widget(s: Setting, key: str, default: Any = None, label: str | None = None) -> Any:
    """One widget for one field, showing `default` (the field's own default if None), or the value
    session state already holds under `key` (a preset's, or the visitor's)."""
    value = s.default if default is None else default
    label = label or s.label
    held = key in st.session_state  # then the widget takes its value from there, and is given none
    if s.kind is bool:
        return st.checkbox(label, **({} if held else {"value": value}), help=s.help, key=key)
    if s.choices:
        words = s.choice_labels or {}
        return st.selectbox(label, s.choices, **({} if held else {"index": s.choices.index(value)}), help=s.help,
                            format_func=lambda choice: words.get(choice, str(choice)), key=key)
    if s.kind is int:
        return st.number_input(label, **({} if held else {"value": value}), step=1, help=s.help, key=key)
    if s.kind is float:
        step = float_step(st.session_state[key] if held else value)
        return st.number_input(label, **({} if held else {"value": float(value)}), step=step, format="%g",
                               help=s.help, key=key)
    return st.text_input(label, **({} if held else {"value": value}), help=s.help, key=key)


def section_widgets(classes: tuple[type[Config], ...], section: str, key_prefix: str,
                    defaults: dict[str, Any], columns: int = 2) -> dict[str, Any]:
    """Widgets for every field of the configs in one form section, in rows of `columns`; returns
    {field name: value}. A field two configs share is shown once."""
    fields = {s.name: s for cls in classes for s in settings(cls)
              if s.section == section and not s.set_by_training}
    values = {}
    slots = st.columns(columns)
    for i, s in enumerate(fields.values()):
        with slots[i % columns]:
            values[s.name] = widget(s, f"{key_prefix}{s.name}", defaults.get(s.name))
    return values
