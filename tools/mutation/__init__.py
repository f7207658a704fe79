"""Mutation testing of mlax's mathematics with mutmut: ``python -m tools.mutation --help``."""
