"""Name -> fact tables (arms, models, datasets, stems, attribution rungs, metrics); no framework,
no I/O.
"""
