"""trial.configuration: the dose-finding design's parameters (issue 17), every problem by field."""

import pytest

from trial.configuration import DesignSpec, design_change_problems, design_problems


def test_the_defaults_and_a_valid_crm_pass() -> None:
    assert design_problems(DesignSpec()) == {}
    assert design_problems(DesignSpec(design="boin"), 4) == {}
    assert design_problems(DesignSpec(design="crm", crm_skeleton=(0.05, 0.12, 0.25, 0.4)), 4) == {}


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (DesignSpec(design="bayes"), "design", "not a design"),
        (DesignSpec(design="boin", target_dlt_rate=0.9), "target_dlt_rate", "0.05 to 0.6"),
        (DesignSpec(design="boin", target_dlt_rate=0.01), "target_dlt_rate", "0.05 to 0.6"),
        (DesignSpec(design="i3+3", target_dlt_rate=0.05), "target_dlt_rate", "above 0.05"),
        (DesignSpec(design="i3+3", target_dlt_rate=0.55), "target_dlt_rate", "at most 0.5"),
        (DesignSpec(design="mtpi2", target_dlt_rate=0.05), "target_dlt_rate", "above 0.05"),
        (DesignSpec(cohort_size=0), "cohort_size", "1 to 12"),
        (DesignSpec(cohort_size=3, max_sample_size=2), "max_sample_size", "from the cohort size (3)"),
        (DesignSpec(design="boin", boin_p_saf=0.28), "boin_p_saf", "at least 10%"),
        (DesignSpec(design="boin", boin_p_tox=0.31), "boin_p_tox", "at least 10%"),
        (DesignSpec(design="boin", boin_p_tox=1.2), "boin_p_tox", "(0, 1)"),
        (DesignSpec(boin_n_earlystop=0), "boin_n_earlystop", "1 to 1000"),
        (DesignSpec(crm_model="probit"), "crm_model", "not a CRM model"),
        (DesignSpec(crm_prior_sd=0.0), "crm_prior_sd", "above 0"),
        (DesignSpec(design="crm"), "crm_skeleton", "needs a skeleton"),
        (DesignSpec(design="crm", crm_skeleton=(0.1, 0.1, 0.3, 0.4)), "crm_skeleton", "increase strictly"),
        (DesignSpec(design="crm", crm_skeleton=(0.0, 0.1, 0.3, 0.4)), "crm_skeleton", "strictly between 0 and 1"),
        (DesignSpec(design="crm", crm_skeleton=(0.1, 0.2, 0.3)), "crm_skeleton", "3 probabilities but the trial has 4"),
        (
            DesignSpec(design="crm", crm_model="logistic", crm_skeleton=(0.5, 0.9, 0.96, 0.99)),
            "crm_skeleton",
            "logistic",
        ),
        (DesignSpec(crm_skeleton=("a",)), "crm_skeleton", "list of numbers"),  # type: ignore[arg-type]
    ],
)
def test_each_problem_names_its_field(spec: DesignSpec, field: str, words: str) -> None:
    problems = design_problems(spec, 4)
    assert list(problems) == [field], problems
    assert any(words in m for m in problems[field]), problems[field]


def test_boundaries_are_inclusive_where_the_designs_accept_them() -> None:
    assert design_problems(DesignSpec(design="boin", target_dlt_rate=0.05)) == {}
    assert design_problems(DesignSpec(design="boin", target_dlt_rate=0.6)) == {}
    assert design_problems(DesignSpec(design="boin", boin_p_saf=0.27, boin_p_tox=0.33)) == {}  # exactly 10%
    assert design_problems(DesignSpec(design="i3+3", target_dlt_rate=0.5)) == {}
    assert design_problems(DesignSpec(design="mtpi2", target_dlt_rate=0.6)) == {}


def test_a_design_change_after_enrolment_needs_a_protocol_version_and_a_reason() -> None:
    assert design_change_problems(["design"], 0, None, [], "") == {}  # nobody enrolled yet
    assert design_change_problems([], 5, None, [], "") == {}  # nothing changed
    refused = design_change_problems(["design", "target_dlt_rate"], 3, None, ["1"], " ")
    assert set(refused) == {"protocol_version", "reason"}
    assert "design, target_dlt_rate" in refused["protocol_version"][0]
    unknown = design_change_problems(["design"], 3, "9", ["1", "2"], "amendment")
    assert list(unknown) == ["protocol_version"] and "'9' is not a protocol version" in unknown["protocol_version"][0]
    assert design_change_problems(["design"], 3, "2", ["1", "2"], "amendment 2 moves to BOIN") == {}
