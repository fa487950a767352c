"""`doit` in the repo root builds every stale question with the same tasks, DB and checker as
`mksap run` (settings come from mksap.toml / MKSAP_* like any mksap command)."""

from mksap.build.dodo import dodo_namespace

globals().update(dodo_namespace())
