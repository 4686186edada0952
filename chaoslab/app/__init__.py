"""The use cases, once: the CLI, the Python API (``chaoslab``) and any other front end call
these and only format what they return.

- ``subject``: a path becomes an experiment or a game day (catalog discovery), and a plan.
- ``rules``: alert rules from every source: rule files, PrometheusRule files, ``k8s://``
  addresses, or what Prometheus has loaded.
- ``execution``: running a plan: backend and metrics wiring, the run, the run record.
- ``cleanup``: faults left behind, found and removed over the ``ChaosBackend`` port, for
  both targets.
- ``api``: the Python API's functions (load, dump, save, validate, to_plan, exports,
  hypothesis, cleanup, run), re-exported by ``chaoslab``; ``build``: typed constructors
  checked by the loader's rules; ``document``: model values as chaoslab files.
- ``schema``: the JSON Schema of the files, generated from the loader's field definitions.

Nothing here prints or exits; notices go to a callback the caller passes.
"""
