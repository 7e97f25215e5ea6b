"""CDISC deliverables (issue 18): SDTM and ADaM datasets from the casebook.

``metadata`` (the variables as data), ``terminology`` (controlled terms), ``mapping``
(pure: casebook rows in, records out) and ``writers`` (XPT v5, Dataset-JSON v1.1) have
no Django; ``selectors`` reads the casebook, ``package`` ties them together for
``manage.py export_sdtm``. docs/exports.md, section "CDISC datasets".
"""
