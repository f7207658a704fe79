"""What mutation testing covers: the mathematical modules, each with the tests that may kill it.

Each target is a module path under ``src/mlax/experimental/`` (the three distributions' sources
merged, as they are installed) and the test paths whose coverage decides which tests run for each of
its mutants (mutmut records which tests reach each function, so a wide selection costs one
coverage run, not one run per mutant). Validation helpers, version strings, deprecation machinery
and interop adapters are left out: their behaviour is checked by the contract tests, and they hold
no formula.
"""

from __future__ import annotations

CORE_TESTS = ("tests/core",)
LOSSES_TESTS = ("tests/losses",)
OPTIM_TESTS = ("tests/optim",)

# core/_tree_difference.py is left out: it words check_trees_match's messages (which conditions
# raise stays in _tree.py, a target), and test_messages.py pins those words.
_CORE = ("core/_tree.py", "core/_apply.py")
_LOSSES = (
    "losses/_batching.py",
    "losses/_logits.py",
    "losses/_probabilities.py",
    "losses/_regression.py",
    "losses/_margin.py",
    "losses/_ranking.py",
    "losses/_segmentation.py",
    "losses/_contrastive.py",
    "losses/_ctc.py",
    "losses/_utilities.py",
)
# Every public optimizer module, the shared kernels, the wrappers and the schedules.
_OPTIM = (
    "optim/_src/adafactor_factoring.py",
    "optim/_src/adam_family.py",
    "optim/_src/adamax_family.py",
    "optim/_src/backtracking_linesearch.py",
    "optim/_src/dimension_numbers.py",
    "optim/_src/distance_over_gradients.py",
    "optim/_src/galore_projection.py",
    "optim/_src/lbfgs_memory.py",
    "optim/_src/moments.py",
    "optim/_src/momo_step_size.py",
    "optim/_src/muon_coefficients.py",
    "optim/_src/newton_schulz.py",
    "optim/_src/schedule_free.py",
    "optim/_src/sm3_accumulators.py",
    "optim/_src/zoom_linesearch.py",
    "optim/acprop.py",
    "optim/adabelief.py",
    "optim/adadelta.py",
    "optim/adafactor.py",
    "optim/adagrad.py",
    "optim/adam.py",
    "optim/adamax.py",
    "optim/adamaxw.py",
    "optim/adamw.py",
    "optim/adan.py",
    "optim/ademamix.py",
    "optim/adopt.py",
    "optim/amsgrad.py",
    "optim/clipping.py",
    "optim/cocob.py",
    "optim/composition.py",
    "optim/dadapt_adamw.py",
    "optim/dog.py",
    "optim/dowg.py",
    "optim/dpsgd.py",
    "optim/fromage.py",
    "optim/galore.py",
    "optim/lamb.py",
    "optim/lars.py",
    "optim/lbfgs.py",
    "optim/lion.py",
    "optim/madgrad.py",
    "optim/momo.py",
    "optim/momo_adam.py",
    "optim/muon.py",
    "optim/nadam.py",
    "optim/nadamw.py",
    "optim/noisy_sgd.py",
    "optim/novograd.py",
    "optim/optimistic_adam.py",
    "optim/optimistic_adam_v2.py",
    "optim/optimistic_gradient_descent.py",
    "optim/polyak_sgd.py",
    "optim/prodigy.py",
    "optim/radam.py",
    "optim/reduce_on_plateau.py",
    "optim/rmsprop.py",
    "optim/rprop.py",
    "optim/schedule_free_adamw.py",
    "optim/schedule_free_sgd.py",
    "optim/schedules.py",
    "optim/sgd.py",
    "optim/sign_sgd.py",
    "optim/signum.py",
    "optim/simplified_ademamix.py",
    "optim/sm3.py",
    "optim/sophia.py",
    "optim/transforms.py",
    "optim/wrappers.py",
    "optim/yogi.py",
)

TARGETS: dict[str, tuple[str, ...]] = {
    **{module: CORE_TESTS + OPTIM_TESTS for module in _CORE},
    **{module: LOSSES_TESTS for module in _LOSSES},
    **{module: OPTIM_TESTS for module in _OPTIM},
}

# Statements whose mutants change what an error says, not what is computed: a raise (its message
# included), a warning, and the argument checks (their names for the message and their allowed
# ranges; tests/*/test_contract.py and test_hardening.py check every one of them). The conditions
# that lead to a raise are still mutated.
NOT_MATHEMATICS = (r"^\s*raise\b", r"warnings\.warn\(", r"\bcheck_\w+\(")

# The CI sample (tools/check): two modules, each against the few test files written to kill its
# mutants, so that mapping the tests takes seconds rather than the whole suite's minutes. The sample
# is drawn from the mutants those files reach.
_OPTIM_SENSITIVITY = "tests/optim/test_sensitivity.py::"
_LOSSES_SENSITIVITY = "tests/losses/test_sensitivity.py::"
SAMPLE: dict[str, tuple[str, ...]] = {
    "optim/clipping.py": (
        "tests/optim/test_wrappers.py",
        "tests/optim/test_defaults.py",
        "tests/optim/test_low_precision.py::"
        "test_a_float32_clipping_step_computes_no_float64_array_even_with_x64",
        _OPTIM_SENSITIVITY + "test_perturbing_a_wrapper_or_schedule_parameter_changes_its_output",
        _OPTIM_SENSITIVITY + "test_clip_by_global_norm_at_threshold",
        _OPTIM_SENSITIVITY + "test_clip_at_threshold",
        _OPTIM_SENSITIVITY + "test_adaptive_grad_clip_at_threshold",
        "tests/optim/test_composition.py::test_adaptive_grad_clip_default_units_match_optax_at_every_rank",
    ),
    "losses/_logits.py": (
        "tests/losses/test_logits.py",
        "tests/losses/test_defaults.py",
        "tests/losses/test_contract.py::test_matches_the_float64_reference",
        "tests/losses/test_contract.py::test_no_float64_array_is_computed_for_lower_precision_inputs",
        _LOSSES_SENSITIVITY + "test_gradient_in_every_float_argument_matches_central_differences",
        _LOSSES_SENSITIVITY + "test_value_at_off_domain_targets_equals_optax",
        _LOSSES_SENSITIVITY + "test_scaling_a_hyperparameter_changes_the_value",
        _LOSSES_SENSITIVITY + "test_scaled_hyperparameter_value_matches_the_reference",
        "tests/losses/test_where.py::"
        "test_rows_of_very_different_scales_are_each_shifted_by_their_own_maximum",
    ),
}
