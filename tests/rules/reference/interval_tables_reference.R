# Reference decision tables for analysis/designs/i3plus3.py and keyboard.py
# (tests/rules/test_designs_interval.py). R 4.2.2 (Debian r-base-core).
# Sources, read from their git mirrors (git --git-dir=<mirror> archive HEAD | tar x):
#   i3+3 and mTPI-2: FIND (github:oliviazhang0416/FIND, commit 55c6fc5), R/get_decision_i3plus3.R and
#     R/get_decision_mtpi2.R (the package itself needs ggplot2/gridExtra, so the two functions are sourced);
#   Keyboard: Keyboard 0.1.3 (github:cran/Keyboard, commit 75de0db), R/get.boundary.kb.R (pure R, sourced).
# Run: FIND=/path/to/FIND KEYBOARD=/path/to/Keyboard Rscript tests/rules/reference/interval_tables_reference.R
source(file.path(Sys.getenv("FIND"), "R", "get_decision_i3plus3.R"))
source(file.path(Sys.getenv("FIND"), "R", "get_decision_mtpi2.R"))
source(file.path(Sys.getenv("KEYBOARD"), "R", "get.boundary.kb.R"))
show <- function(label, tab) {
  for (n in sort(unique(tab$n))) cat(sprintf("%s n=%d: %s\n", label, n, paste(tab$Decision[tab$n == n], collapse = " ")))
}
for (cfg in list(c(0.3, 0.25, 0.35), c(0.25, 0.2, 0.3), c(0.2, 0.15, 0.25))) {
  show(sprintf("i3+3 pT=%s EI=[%s,%s]", cfg[1], cfg[2], cfg[3]), get_decision_i3plus3(cfg[1], cfg[2:3], 12)$tab)
  show(sprintf("mTPI-2 pT=%s EI=[%s,%s]", cfg[1], cfg[2], cfg[3]), get_decision_mtpi2(cfg[1], cfg[2:3], 12)$tab)
}
# 0.12 and 0.15: the truncated first key [0, 0.07) / [0, 0.1) lies next to the target key (compensation factor).
for (target in c(0.3, 0.25, 0.2, 0.12, 0.15)) {
  b <- get.boundary.kb(target = target, ncohort = 4, cohortsize = 3)$full_boundary_tab
  cat(sprintf("Keyboard target=%s margins 0.05\n", target))
  cat("  n     :", b[1, ], "\n  esc<= :", b[2, ], "\n  deesc>=:", b[3, ], "\n  elim>=:", ifelse(is.na(b[4, ]), "NA", b[4, ]), "\n")
}
# Keyboard operating characteristics (get.oc.kb sets its own seed, 6), for the simulation check.
source(file.path(Sys.getenv("KEYBOARD"), "R", "select.mtd.kb.R"))
source(file.path(Sys.getenv("KEYBOARD"), "R", "get.oc.kb.R"))
oc <- get.oc.kb(target = 0.3, p.true = c(0.05, 0.15, 0.3, 0.45, 0.6), ncohort = 10, cohortsize = 3, ntrial = 10000)
cat("get.oc.kb target=0.3 p.true=0.05,0.15,0.3,0.45,0.6 ncohort=10 cohortsize=3 ntrial=10000\n")
cat("  selpercent:", oc$selpercent, "\n  npatients:", oc$npatients, "\n  ntox:", oc$ntox,
    "\n  totaln:", oc$totaln, "percentstop:", oc$percentstop, "\n")
