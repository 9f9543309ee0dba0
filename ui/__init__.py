"""Streamlit helpers shared by the pages of the app."""
