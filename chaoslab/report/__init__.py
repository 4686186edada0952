"""Run reports: the run.json record, JUnit XML for CI and a short Markdown summary."""
