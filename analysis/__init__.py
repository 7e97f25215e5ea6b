"""Trial-level computations above the clinical data (issue 17).

`analysis.designs` holds the dose-finding designs as pure rule modules (no Django).
The Django side (settings, API, pages) comes later; no app is registered yet.
"""
