"""The run directory contract: RunSpec and ids, checks of a finished run, the trainer lock,
progress views, migration.
"""
