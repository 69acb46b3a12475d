"""The device: what this machine or a named device is (profiles/*.yaml, `profile`), what it compiles for
(targets/*.yaml, `target`), its budgets (`budget`), and the YAML schema and registries they are read with."""
