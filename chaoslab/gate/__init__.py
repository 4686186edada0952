"""The SLO gate: the runner's halt conditions as HTTP status codes, for Chaos Mesh
StatusChecks (``chaoslab gate serve``). ``evaluator`` judges, ``server`` answers."""
