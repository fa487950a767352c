"""mksap's first-party plugins, declared through the `mksap` entry-point group like any other."""
