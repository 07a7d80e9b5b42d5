"""Plots and groupby diagnostics of a dataset variable.
"""
