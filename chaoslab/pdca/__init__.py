"""Plan-Do-Check-Act: every run becomes a PDCA record, and its Act items a checklist
tracked across runs.

- ``collect``: the record of a run (plan, timeline, SLI series, detection) from the plan,
  the run result and Prometheus range queries;
- ``findings``: the rules that turn a step's evidence into Act items, one small pure
  function per finding kind;
- ``ledger``: the checklist in SQLite (``<reports>/chaoslab.db``) and its lifecycle.

The typed values are in ``chaoslab.pdca_model``; their JSON form in
``chaoslab.report.pdca_record``.
"""
