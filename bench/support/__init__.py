"""What the benchmarks share, one module per subject.

Benchmarks run against the development database (or DATABASE_URL, or a scratch database
of their own with --scratch-db) and create their own tenants (support/tenants.py).
Scripts put bench/ on sys.path and import `support.<module>`; nothing here imports a
benchmark script.
"""
