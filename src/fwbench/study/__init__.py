"""Many runs: the matrix of stages, executors (local, Slurm) that launch them, and collecting their
results.
"""
