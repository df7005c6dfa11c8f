"""The two arms. Only modules under ``frameworks/<name>/`` import that framework."""
