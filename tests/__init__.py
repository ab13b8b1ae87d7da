"""ringloop behaviour suite (a package so its module names never clash with tests/cpython)."""
