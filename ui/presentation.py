"""Presentation mode, for a projector and the back of a classroom: larger text, images, maps and
chart labels, and the pages' prose folded away so that the visuals fill the screen.

It is a sidebar toggle whose choice the session keeps across page switches and the URL mirrors
(`?present=true` opens the app in it, so a link can be shared). Pages ask `presenting()`; charts pass through
`chart()`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

KEY = "present"  # the URL's query parameter
ON = "presentation_on"  # the session's choice, which outlives each page's toggle widget
TOGGLE = "presentation_toggle"
# Minimum sizes in presentation mode, in CSS px.
BODY_PX = 21
CHART_TICK_PX = 17
CHART_TEXT_PX = 19
IMAGE_ZOOM = 1.5

# Streamlit's own elements, by their test ids: body text and lists, widget labels and captions.
# Tables keep their size: seven columns of numbers would no longer fit a projector's narrow page.
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
[data-testid="stMain"] [data-testid="stMetricLabel"] p,
[data-testid="stSidebar"] [data-testid="stMarkdownContainer"] p {{
    font-size: {BODY_PX}px !important; line-height: 1.45 !important;
}}
[data-testid="stMain"] [data-testid="stImage"] img {{ zoom: {IMAGE_ZOOM}; max-width: calc(100% / {IMAGE_ZOOM}); }}
</style>
"""


def _flip() -> None:
    st.session_state[ON] = st.session_state[TOGGLE]


def presentation_toggle() -> bool:
    """The sidebar's toggle; every page draws it (through `ui.common.sidebar_navigation`). The
    choice lives in the session, so it lasts across page switches (a page link drops the URL's
    query), and the URL mirrors it so that the address opens the app the same way."""
    on = st.sidebar.toggle(
        "Presentation mode", value=presenting(), key=TOGGLE, on_change=_flip,
        help="Large text, images and charts for a projector, with the explanations folded away. "
             "Add ?present=true to the address to open the app this way.")
    if on and st.query_params.get(KEY) != "true":
        st.query_params[KEY] = "true"
    elif not on and KEY in st.query_params:
        del st.query_params[KEY]
    if on:
        st.html(CSS)
    return on


def presenting() -> bool:
    """Whether this run is in presentation mode: in a new session, as the address says (a page
    may draw its main part before the sidebar's toggle)."""
    if ON not in st.session_state:
        st.session_state[ON] = st.query_params.get(KEY, "").strip().lower() in ("true", "1", "yes", "on")
    return bool(st.session_state[ON])


def chart(fig: go.Figure) -> go.Figure:
    """A Plotly figure as the current mode shows it: legend symbols at a readable size whatever
    the size of the points they stand for (a latent map's points are 4 px), and in presentation
    mode its tick labels, legend, titles and annotations enlarged (and a taller plot to hold them)."""
    fig.update_layout(legend_itemsizing="constant")
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
