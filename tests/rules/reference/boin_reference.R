# Reference values for analysis/designs/boin.py (tests/rules/test_designs_boin.py).
# R 4.2.2 (Debian r-base-core), BOIN 2.7.2 built from github:cran/BOIN (commit 6c3a0c2)
# with its dependency Iso 0.0-21 (github:cran/Iso):
#   git --git-dir=<mirror> archive --prefix=BOIN/ HEAD | tar x && R CMD INSTALL BOIN
# Run: Rscript tests/rules/reference/boin_reference.R
library(BOIN)
options(digits = 15)
for (target in c(0.2, 0.25, 0.3)) {
  for (cs in c(1, 3)) {
    ncohort <- if (cs == 1) 30 else 10
    b <- get.boundary(target = target, ncohort = ncohort, cohortsize = cs)
    tab <- if (cs == 1) b$boundary_tab else b$full_boundary_tab
    cat(sprintf("get.boundary target=%s cohortsize=%d lambda_e=%.15f lambda_d=%.15f\n", target, cs, b$lambda_e, b$lambda_d))
    cat("  n     :", tab[1, ], "\n")
    cat("  esc<= :", tab[2, ], "\n")
    cat("  deesc>=:", tab[3, ], "\n")
    cat("  elim>=:", ifelse(is.na(tab[4, ]), "NA", tab[4, ]), "\n")
    if (cs == 3) cat("  printed boundary_tab columns n =", b$boundary_tab[1, ], "\n")
  }
}
b <- get.boundary(target = 0.3, ncohort = 10, cohortsize = 3, extrasafe = TRUE)
cat("extrasafe target=0.3 stop>=:", ifelse(is.na(b$stop_boundary[2, ]), "NA", b$stop_boundary[2, ]), "\n")

cases <- list(
  list(0.3, c(3, 3, 15, 9, 0), c(0, 0, 4, 4, 0)),      # the select.mtd help-page example
  list(0.3, c(3, 6, 9, 3, 0), c(0, 3, 2, 1, 0)),       # isotonic regression pools levels 2-3
  list(0.25, c(3, 6, 12, 6, 3), c(0, 1, 2, 3, 3)),     # level 5 eliminated (3/3)
  list(0.3, c(3, 3, 0, 0, 0), c(3, 0, 0, 0, 0)),       # level 1 eliminated: no MTD (99)
  list(0.2, c(6, 6, 6, 0), c(0, 1, 2, 0)),             # tie structure
  list(0.3, c(6, 9, 6), c(1, 1, 4)),
  list(0.3, c(3, 6, 9, 0), c(0, 2, 1, 0)),             # PAVA changes the pick
  list(0.3, c(3, 3, 3, 3), c(0, 0, 0, 0)),             # all below target: highest
  list(0.25, c(9, 9, 3), c(1, 2, 3))
)
for (cs in cases) {
  r <- select.mtd(cs[[1]], cs[[2]], cs[[3]])
  trtd <- cs[[2]] > 0
  y <- cs[[3]][trtd]; n <- cs[[2]][trtd]
  cat(sprintf("select.mtd target=%s npts=%s ntox=%s MTD=%d phat=%s\n", cs[[1]], paste(cs[[2]], collapse=","),
              paste(cs[[3]], collapse=","), r$MTD, paste(r$p_est$phat, collapse=",")))
  # unrounded isotonic estimates (same code as select.mtd's phat.all)
  w <- 1/((y + 0.05) * (n - y + 0.05)/((n + 0.1)^2 * (n + 0.1 + 1)))
  cat("  raw phat:", sprintf("%.12f", (y + 0.05)/(n + 0.1)), " iso:", sprintf("%.12f", Iso::pava((y + 0.05)/(n + 0.1), w)), "\n")
}
r <- select.mtd(0.3, c(3, 3, 3), c(0, 0, 2), extrasafe = TRUE)
cat("extrasafe select.mtd MTD=", r$MTD, "\n")
cat("select.mtd 0.3 c(3,3,0) c(2,0,0): extrasafe", select.mtd(0.3, c(3, 3, 0), c(2, 0, 0), extrasafe = TRUE)$MTD, "plain", select.mtd(0.3, c(3, 3, 0), c(2, 0, 0))$MTD, "\n")

# Operating characteristics (for the simulation's Monte Carlo comparison)
oc <- get.oc(target = 0.3, p.true = c(0.05, 0.15, 0.3, 0.45, 0.6), ncohort = 10, cohortsize = 3, ntrial = 10000, seed = 6)
cat("get.oc target=0.3 p.true=0.05,0.15,0.3,0.45,0.6 ncohort=10 cohortsize=3 ntrial=10000\n")
cat("  selpercent:", oc$selpercent, "\n  npatients:", oc$npatients, "\n  ntox:", oc$ntox,
    "\n  totaltox:", oc$totaltox, "totaln:", oc$totaln, "pcs:", oc$pcs, "percentstop:", oc$percentstop, "\n")
oc <- get.oc(target = 0.25, p.true = c(0.25, 0.4, 0.5, 0.6), ncohort = 8, cohortsize = 3, n.earlystop = 12, ntrial = 10000, seed = 6)
cat("get.oc target=0.25 p.true=0.25,0.4,0.5,0.6 ncohort=8 cohortsize=3 n.earlystop=12 ntrial=10000\n")
cat("  selpercent:", oc$selpercent, "\n  npatients:", oc$npatients, "\n  ntox:", oc$ntox,
    "\n  totaltox:", oc$totaltox, "totaln:", oc$totaln, "percentstop:", oc$percentstop, "\n")
# n.earlystop cuts the printed table (boundary_tab: every cohortsize-th column up to min(npts, n.earlystop)).
b <- get.boundary(target = 0.3, ncohort = 10, cohortsize = 3, n.earlystop = 12)
cat("get.boundary target=0.3 ncohort=10 cohortsize=3 n.earlystop=12\n  boundary_tab n:", b$boundary_tab[1, ],
    "\n  esc<=:", b$boundary_tab[2, ], "\n  deesc>=:", b$boundary_tab[3, ], "\n  elim>=:", b$boundary_tab[4, ],
    "\n  full_boundary_tab columns:", ncol(b$full_boundary_tab), "\n")
