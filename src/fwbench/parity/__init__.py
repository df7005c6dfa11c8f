"""Fairness checks where both frameworks meet: parameters, audit, weight transfer, outputs.

Each module imports the frameworks inside its functions, through ``frameworks/both.py``
(torch before TensorFlow), so importing ``fwbench.parity`` costs nothing.
"""
