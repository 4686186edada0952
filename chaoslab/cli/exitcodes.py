"""The exit-code contract. Defined here and nowhere else.

| code | meaning |
|------|---------|
| 0 | every hypothesis held |
| 1 | deviated, halted or baseline not met |
| 2 | bad input or usage |
| 3 | infrastructure error (Prometheus, Kubernetes or Alertmanager unreachable, injection failed, |
|   | checklist not writable, interrupted), cleanup done |
| 4 | cleanup failed: something may remain |
"""

OK = 0
FAILED = 1
USAGE = 2
INFRA = 3
CLEANUP = 4

EPILOG = """exit codes:
  0  every hypothesis held
  1  a step deviated, halted or its baseline was not met
  2  bad input or usage (nothing was injected)
  3  infrastructure error: Prometheus, Kubernetes or Alertmanager unreachable, injection failed,
     the checklist not writable, or interrupted by SIGINT/SIGTERM (cleanup done)
  4  cleanup failed: a fault may remain (the objects are listed)
"""
