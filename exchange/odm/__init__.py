"""CDISC ODM 1.3.2 export of a trial's casebooks with their audit trail (issue 18)."""
