"""Binds CPython's installed test.test_asyncio suite to ringloop's loops (see README.md)."""
