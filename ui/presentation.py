"""Presentation mode, for a projector and the back of a classroom: larger text, images, maps and
chart labels, and the pages' prose folded away so that the visuals fill the screen.

It is a sidebar toggle bound to the URL (`?present=true` opens the app in it), so it lasts
across page switches and a link can be shared. Pages ask `presenting()`; charts pass through
`chart()`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

KEY = "present"  # the toggle's session key and the URL's query parameter
# Minimum sizes in presentation mode, in CSS px.
BODY_PX = 21
CHART_TICK_PX = 17
CHART_TEXT_PX = 19
IMAGE_ZOOM = 1.5

# Streamlit's own elements, by their test ids: body text and lists, widget labels and captions.
CSS = f"""
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] [data-testid="stWidgetLabel"] p,
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p,
[data-testid="stMain"] [data-testid="stExpander"] summary p,
[data-testid="stMain"] [data-testid="stTab"] p,
[data-testid="stMain"] [data-baseweb="select"] div,
[data-testid="stMain"] [data-testid="stRadio"] label p,
[data-testid="stMain"] td, [data-testid="stMain"] th,
[data-testid="stMain"] [data-testid="stMetricLabel"] p,
[data-testid="stSidebar"] [data-testid="stMarkdownContainer"] p {{
    font-size: {BODY_PX}px !important; line-height: 1.45 !important;
}}
[data-testid="stMain"] [data-testid="stImage"] img {{ zoom: {IMAGE_ZOOM}; max-width: calc(100% / {IMAGE_ZOOM}); }}
</style>
"""


def presentation_toggle() -> bool:
    """The sidebar's toggle; every page draws it (through `ui.common.sidebar_navigation`)."""
    on = st.sidebar.toggle(
        "Presentation mode", key=KEY, bind="query-params",
        help="Large text, images and charts for a projector, with the explanations folded away. "
             "Add ?present=true to the address to open the app this way.")
    if on:
        st.html(CSS)
    return on


def presenting() -> bool:
    return bool(st.session_state.get(KEY, False))


def chart(fig: go.Figure) -> go.Figure:
    """A Plotly figure as the current mode shows it: unchanged, or with its tick labels, legend,
    titles and annotations enlarged for a projector (and a taller plot to hold them)."""
    if not presenting():
        return fig
    fig.update_layout(font_size=CHART_TEXT_PX, legend_font_size=CHART_TEXT_PX, title_font_size=CHART_TEXT_PX + 2,
                      hoverlabel_font_size=CHART_TEXT_PX)
    if fig.layout.height:
        fig.update_layout(height=int(fig.layout.height * 1.3))
    fig.update_xaxes(tickfont_size=CHART_TICK_PX, title_font_size=CHART_TEXT_PX)
    fig.update_yaxes(tickfont_size=CHART_TICK_PX, title_font_size=CHART_TEXT_PX)
    fig.update_annotations(font_size=CHART_TEXT_PX - 2)
    return fig
