"""Helpers shared by OpsPulse's tests and benchmarks, one module per subject.

Nothing here is a fixture and nothing here imports a test module: fixtures live in the
conftest files, which use these helpers as any test does.
"""
