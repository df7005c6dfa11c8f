"""The validated configuration: train config, matrix, executor and analysis settings, command-line
overrides.
"""
