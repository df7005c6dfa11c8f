"""CLI command groups, one module per area; each imports frameworks only inside commands."""
