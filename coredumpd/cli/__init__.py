"""The ``coredumpd`` command line: one verb per module, data first, a renderer after."""
