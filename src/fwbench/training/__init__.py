"""One training run: preconditions, the shared epoch loop, and what it reports to (console,
TensorBoard, MLflow).
"""
