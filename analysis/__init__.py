"""Trial-level computations above the clinical data (issue 17): a Django app above safety.

Pure rule modules (no Django): escalation.py (3+3), designs/ (BOIN, i3+3, mTPI-2, CRM,
pathways, simulation), operating_characteristics.py, survival.py, endpoints.py,
survival_summary.py. services.py computes the stored results (TrialComputation) through the
patients, dosing and safety selectors; tasks.py runs them in Celery; views, api and urls
serve escalation, survival and the planning tool. The apps below never import this one.
"""
