"""Party modules: one per system under test. See ../README.md."""
