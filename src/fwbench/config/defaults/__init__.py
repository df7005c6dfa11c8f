"""Shipped default configuration files (package data)."""
