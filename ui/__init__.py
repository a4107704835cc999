"""Streamlit-side helpers shared by pages: Plotly figures built from what dlplay returns."""
