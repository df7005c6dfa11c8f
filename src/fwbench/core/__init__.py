"""Leaf utilities every layer may use: user errors, atomic file writes, the workspace layout,
thread counts.
"""
