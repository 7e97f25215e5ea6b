"""Dose-finding designs behind one interface (issue 17), all pure (no Django, mypy --strict).

common.py           the interface: LevelOutcome in, DesignResult out, the decision vocabulary
interval.py         what the interval designs share: elimination, the cohort walk, select_mtd (PAVA)
boin.py             BOIN (Liu & Yuan 2015; R BOIN get.boundary / select.mtd / get.oc)
i3plus3.py          i3+3 (Liu et al. 2020)
keyboard.py         Keyboard (Yan et al. 2017) = mTPI-2 (Guo et al. 2017); R Keyboard get.boundary.kb
crm.py              one-parameter CRM, empiric or logistic (O'Quigley 1990; R dfcrm crm)
three_plus_three.py the 3+3 engine of analysis/escalation.py behind the same interface (an adapter)
pathways.py         dose-transition pathways (Yap et al. 2017; R escalation get_dose_paths)
simulation.py       operating characteristics by seeded simulation, and exactly by enumeration, for any design
comparison.py       several designs side by side for the planning page (inputs checked by field, progress, 3+3 vs exact)
"""
