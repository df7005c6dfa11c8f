"""Statistics, plots and the report, computed from collected results (never imports a framework)."""
