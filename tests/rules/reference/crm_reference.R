# Reference values for analysis/designs/crm.py (tests/rules/test_designs_crm.py).
# R 4.2.2, dfcrm 0.2-2.1 built from github:cran/dfcrm (commit 18891cc).
# Run: Rscript tests/rules/reference/crm_reference.R
library(dfcrm)
# The example of dfcrm's crm help page (man/crm.Rd).
prior <- c(0.05, 0.10, 0.20, 0.35, 0.50, 0.70)
target <- 0.2
level <- c(3, 4, 4, 3, 3, 4, 3, 2, 2, 2)
y <- c(0, 0, 1, 0, 0, 1, 1, 0, 0, 0)
post_mean_p <- function(prior, y, level, scale, model, intcpt = 3) {
  # posterior mean of each level's DLT probability (not printed by dfcrm; same integrand)
  if (model == "empiric") {
    f <- function(a, k) sapply(a, function(b) { p <- prior^exp(b); prod(p[level]^y * (1 - p[level])^(1 - y)) * dnorm(b, 0, scale) * (if (k == 0) 1 else p[k]) })
  } else {
    x <- log(prior/(1 - prior)) - intcpt
    f <- function(a, k) sapply(a, function(b) { p <- 1/(1 + exp(-intcpt - exp(b) * x)); prod(p[level]^y * (1 - p[level])^(1 - y)) * dnorm(b, 0, scale) * (if (k == 0) 1 else p[k]) })
  }
  den <- integrate(f, -Inf, Inf, k = 0, abs.tol = 0)$value
  sapply(seq_along(prior), function(k) integrate(f, -Inf, Inf, k = k, abs.tol = 0)$value / den)
}
for (model in c("empiric", "logistic")) {
  foo <- crm(prior, target, y, level, model = model)
  cat(sprintf("crm model=%s estimate=%.10f post.var=%.10f mtd=%d\n", model, foo$estimate, foo$post.var, foo$mtd))
  cat("  ptox:", sprintf("%.10f", foo$ptox), "\n")
  cat("  ptoxL:", sprintf("%.10f", foo$ptoxL), "\n  ptoxU:", sprintf("%.10f", foo$ptoxU), "\n")
  cat("  posterior mean p:", sprintf("%.10f", post_mean_p(prior, y, level, sqrt(1.34), model)), "\n")
}
# Two more data sets: first patients only; many DLTs.
foo <- crm(prior, target, c(0, 0, 0), c(1, 1, 1))
cat(sprintf("crm empiric level=1,1,1 tox=0,0,0 estimate=%.10f mtd=%d ptox=%s\n", foo$estimate, foo$mtd, paste(sprintf("%.10f", foo$ptox), collapse = ",")))
foo <- crm(prior, 0.25, c(0, 0, 0, 1, 0, 1, 1, 1), c(2, 2, 2, 3, 3, 3, 3, 3))
cat(sprintf("crm empiric target=0.25 level=2,2,2,3,3,3,3,3 tox=0,0,0,1,0,1,1,1 estimate=%.10f mtd=%d ptox=%s\n", foo$estimate, foo$mtd, paste(sprintf("%.10f", foo$ptox), collapse = ",")))
foo <- crm(prior, 0.25, c(0, 0, 0, 1, 0, 1, 1, 1), c(2, 2, 2, 3, 3, 3, 3, 3), model = "logistic")
cat(sprintf("crm logistic target=0.25 same data estimate=%.10f mtd=%d ptox=%s\n", foo$estimate, foo$mtd, paste(sprintf("%.10f", foo$ptox), collapse = ",")))
# Overdose control (EWOC-style): P(p_k > 0.3 | data) for the help-page data, by integration
# of the same posterior (dfcrm prints no such number).
prob_above <- function(prior, y, level, scale, model, t, intcpt = 3) {
  pk <- function(b) if (model == "empiric") prior^exp(b) else 1/(1 + exp(-intcpt - exp(b) * (log(prior/(1 - prior)) - intcpt)))
  f <- function(a, k) sapply(a, function(b) { p <- pk(b); prod(p[level]^y * (1 - p[level])^(1 - y)) * dnorm(b, 0, scale) * (if (k == 0) 1 else (p[k] > t)) })
  den <- integrate(f, -Inf, Inf, k = 0, abs.tol = 0)$value
  sapply(seq_along(prior), function(k) integrate(f, -10, 10, k = k, abs.tol = 0, subdivisions = 1000L)$value / den)
}
for (model in c("empiric", "logistic")) {
  cat(sprintf("P(p > 0.3) model=%s:", model), sprintf("%.6f", prob_above(prior, y, level, sqrt(1.34), model, 0.3)), "\n")
}
