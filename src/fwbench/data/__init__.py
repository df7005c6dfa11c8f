"""Datasets: raw files -> prepared arrays, fixed stratified splits, train-only channel stats."""
