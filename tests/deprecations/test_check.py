"""``deprecations check``: finding uses of deprecated names in source files, the exit status against
``--target``, and ``--fix``."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlax.experimental.core import Deprecation
from mlax.experimental.core._upgrade_check import apply_edits, scan_source
from mlax.experimental.core.deprecations import main
from mlax.experimental.optim._src.deprecations_manifest import DEPRECATIONS as LIVE

# A moved name and keywords that go away, the kinds no live record has: mlax-optim 0.2.0 deprecated
# these two and 0.4.0 removed them. The scanner never imports what it finds, so it is shown on them
# with records built here; the command, which reads the installed records, on the live renames.
APPLY = "mlax.experimental.optim.apply_gradients"
STEP = "mlax.experimental.optim.sgd.step(lr, momentum, nesterov)"
DEPRECATIONS = (
    *LIVE,
    Deprecation(
        name=APPLY,
        distribution="mlax-optim",
        since="0.2.0",
        removed_in="0.4.0",
        replacement="mlax.experimental.core.apply_gradients",
        moved_to="mlax.experimental.core.apply_gradients",
    ),
    Deprecation(
        name="mlax.experimental.optim.sgd.step",
        keywords=("lr", "momentum", "nesterov"),
        distribution="mlax-optim",
        since="0.2.0",
        removed_in="0.4.0",
        replacement="mlax.experimental.optim.sgd.init(weights, lr=..., momentum=..., nesterov=...)",
    ),
)


def found(source: str) -> list[tuple[int, int, str, str, str]]:
    result = scan_source(textwrap.dedent(source), "sample.py", DEPRECATIONS)
    return [(f.line, f.column, f.deprecation.key, f.kind, f.used) for f in result.findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "from mlax.experimental.optim import apply_gradients\n",
            [(1, 37, APPLY, "import", APPLY)],
            id="from-import",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd, apply_gradients as ag\nag(u, w)\n",
            [(1, 42, APPLY, "import", APPLY)],
            id="from-import-aliased-uses-not-repeated",
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\nw = mo.apply_gradients(u, w)\n",
            [(2, 5, APPLY, "attribute", "mo.apply_gradients")],
            id="aliased-module",
        ),
        pytest.param(
            "from mlax.experimental import optim as o\nf = o.apply_gradients\n",
            [(2, 5, APPLY, "attribute", "o.apply_gradients")],
            id="aliased-subpackage",
        ),
        pytest.param(
            "import mlax.experimental.optim\nmlax.experimental.optim.apply_gradients(u, w)\n",
            [(2, 1, APPLY, "attribute", APPLY)],
            id="dotted-path",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd\nsgd.step(g, s, lr=0.1, momentum=0.9)\n",
            [(2, 16, STEP, "keyword", "lr"), (2, 24, STEP, "keyword", "momentum")],
            id="keywords",
        ),
        pytest.param(
            "from mlax.experimental.optim.sgd import step as sgd_step\nsgd_step(g, s, nesterov=True)\n",
            [(2, 16, STEP, "keyword", "nesterov")],
            id="keyword-of-imported-function",
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\ndef f():\n    return mo.sgd.step(g, s, lr=1.0)\n",
            [(3, 30, STEP, "keyword", "lr")],
            id="keyword-in-function-through-module-alias",
        ),
        pytest.param(
            "from mlax.experimental.optim import *\nw = apply_gradients(u, w)\nsgd.step(g, s, lr=0.1)\n",
            [(2, 5, APPLY, "name", "apply_gradients"), (3, 16, STEP, "keyword", "lr")],
            id="star-import",
        ),
        pytest.param(
            "from mlax.experimental.optim import *\napply_gradients = 1\nw = apply_gradients\n",
            [],
            id="star-import-name-rebound",
        ),
        pytest.param(
            "import functools\nfrom mlax.experimental.optim import sgd\n"
            "step = functools.partial(sgd.step, momentum=0.5)\n",
            [(3, 36, STEP, "keyword", "momentum")],
            id="functools-partial",
        ),
        pytest.param(
            "from functools import partial\nimport mlax.experimental.optim as mo\n"
            "step = partial(mo.sgd.step, lr=0.5)\n",
            [(3, 29, STEP, "keyword", "lr")],
            id="partial-imported-from-functools",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd\nsgd.step(g, s, **{'lr': 0.1, 'eps': 1})\n",
            [(2, 19, STEP, "keyword", "lr")],
            id="literal-double-star-keywords",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd\nsgd.step(g, s, **options)\n",
            [(2, 16, STEP, "unknown", "**options")],
            id="dynamic-double-star-is-a-note",
        ),
        pytest.param(
            "s = 'é'; from mlax.experimental.optim import apply_gradients\n",
            [(1, 46, APPLY, "import", APPLY)],
            id="columns-count-characters-not-bytes",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd\nfrom mlax.experimental.core import apply_gradients\n"
            "sgd.step(g, s)\nsgd.init(w, lr=0.1)\napply_gradients(u, w)\n",
            [],
            id="current-api-is-clean",
        ),
        pytest.param(
            "import other as mo\nmo.apply_gradients(u, w)\nstep(g, s, lr=0.1)\n",
            [],
            id="same-names-elsewhere-are-not-mlax",
        ),
        pytest.param(
            "from mlax.experimental.optim import adafactor, adam\n"
            "adam.init(w, weight_decay_rate=0.1)\nadafactor.step(g, s, weight_decay_rate=0.1)\n",
            [],
            id="renamed-keyword-of-another-callable",
        ),
        pytest.param(
            "from mlax.experimental.optim import prodigy\nprodigy.init(w, betas=(0.9, 0.99))\n",
            [(2, 17, "mlax.experimental.optim.prodigy.init(beta3, betas)", "keyword", "betas")],
            id="split-keyword",
        ),
    ],
)
def test_scan_finds_exactly_the_deprecated_uses(
    source: str, expected: list[tuple[int, int, str, str, str]]
) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "from mlax.experimental.optim import apply_gradients\n",
            "from mlax.experimental.core import apply_gradients\n",
            id="moved-import",
        ),
        pytest.param(
            "def f():\n    from mlax.experimental.optim import sgd, apply_gradients as ag\n",
            "def f():\n    from mlax.experimental.optim import sgd\n"
            "    from mlax.experimental.core import apply_gradients as ag\n",
            id="split-import-keeps-alias-and-indentation",
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\nw = mo.apply_gradients(u, w)\n",
            "import mlax.experimental.core\nw = mlax.experimental.core.apply_gradients(u, w)\n",
            id="attribute-replaces-the-import-it-leaves-unused",
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\nw = mo.apply_gradients(u, w)\ns = mo.sgd.init(w)\n",
            "import mlax.experimental.optim as mo\nimport mlax.experimental.core\n"
            "w = mlax.experimental.core.apply_gradients(u, w)\ns = mo.sgd.init(w)\n",
            id="attribute-adds-core-import-next-to-the-still-used-one",
        ),
        pytest.param(
            "from mlax.experimental import core, optim as o\nw = o.apply_gradients(u, w)\n",
            "from mlax.experimental import core\nw = core.apply_gradients(u, w)\n",
            id="attribute-reuses-core-binding-and-drops-the-unused-alias",
        ),
        pytest.param(
            '"""Doc."""\nimport os\nfrom mlax.experimental import optim\n\nLIMIT = 3\nimport numpy\n\n\n'
            "def f(u, w):\n    return optim.apply_gradients(u, w)\n",
            '"""Doc."""\nimport os\nimport mlax.experimental.core\n\nLIMIT = 3\nimport numpy\n\n\n'
            "def f(u, w):\n    return mlax.experimental.core.apply_gradients(u, w)\n",
            id="new-import-takes-the-unused-import-place-not-below-other-code",
        ),
        pytest.param(
            '"""Doc."""\nimport os\nfrom mlax.experimental import optim\n\nLIMIT = 3\nimport numpy\n'
            "w = optim.apply_gradients(u, w)\ns = optim.sgd.init(w)\n",
            '"""Doc."""\nimport os\nfrom mlax.experimental import optim\nimport mlax.experimental.core\n'
            "\nLIMIT = 3\nimport numpy\n"
            "w = mlax.experimental.core.apply_gradients(u, w)\ns = optim.sgd.init(w)\n",
            id="new-import-goes-with-the-imports-when-the-old-one-stays",
        ),
    ],
)
def test_fix_rewrites_moved_names(before: str, after: str) -> None:
    result = scan_source(before, "sample.py", DEPRECATIONS)
    assert all(f.fixable for f in result.findings)
    fixed = apply_edits(before, result.edits)
    assert fixed == after
    assert scan_source(fixed, "sample.py", DEPRECATIONS).findings == ()


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("from mlax.experimental.optim import apply_gradients  # noqa\n", id="comment"),
        pytest.param(
            "import os; from mlax.experimental.optim import apply_gradients\n", id="shared-line"
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\nmlax = 1\nmo.apply_gradients\n",
            id="mlax-rebound",
        ),
        pytest.param(
            "from mlax.experimental.optim import sgd\nsgd.step(g, s, lr=0.1)\n", id="keyword"
        ),
    ],
)
def test_fix_leaves_what_is_not_mechanical(source: str) -> None:
    result = scan_source(source, "sample.py", DEPRECATIONS)
    assert len(result.findings) == 1
    assert not result.findings[0].fixable
    assert result.edits == ()


SAMPLE = """\
import mlax.experimental.optim as mo
from mlax.experimental.optim import adafactor


def train(w):
    s = adafactor.init(w, weight_decay_rate=0.1)
    return s, mo.lbfgs.init(w, **{"max_learning_rate": 1.0})
"""
HIDDEN = "from mlax.experimental.optim import adafactor\nadafactor.init(w, weight_decay_rate=0.1)\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "train.py").write_text(SAMPLE)
    (tmp_path / "src" / "pkg" / "clean.py").write_text("import mlax.experimental.core\n")
    hidden = tmp_path / "src" / ".venv"
    hidden.mkdir()
    (hidden / "ignored.py").write_text(HIDDEN)
    return tmp_path / "src"


@pytest.mark.parametrize(
    ("targets", "status"),
    [
        pytest.param([], 1, id="any-use-without-target"),
        pytest.param(["--target", "mlax-optim==0.5.0"], 0, id="before-removal"),
        pytest.param(["--target", "mlax-optim==0.6.0"], 1, id="at-removal"),
        pytest.param(["--target", "mlax_Optim==0.7.1"], 1, id="after-removal-normalised-name"),
        pytest.param(["--target", "mlax-core==9.0.0"], 0, id="other-distribution"),
        pytest.param(["--target", "mlax-optim==0.6"], 2, id="malformed-target"),
        pytest.param(["--target", "mlax-vision==1.0.0"], 2, id="not-installed-target"),
    ],
)
def test_check_exit_status_follows_the_targets(
    project: Path, targets: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(project), *targets]) == status


def test_check_reports_file_line_column_removal_and_replacement(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["check", str(project), "--target", "mlax-optim==0.6.0"])
    lines = capsys.readouterr().out.splitlines()
    train = project / "pkg" / "train.py"
    assert lines == [
        f"{train}:6:27: keyword weight_decay_rate= of mlax.experimental.optim.adafactor.init is "
        "deprecated since mlax-optim 0.4.0 and removed in mlax-optim 0.6.0; use weight_decay= "
        "[fixable with --fix] [breaks at mlax-optim==0.6.0]",
        f"{train}:7:35: keyword max_learning_rate= of mlax.experimental.optim.lbfgs.init is "
        "deprecated since mlax-optim 0.4.0 and removed in mlax-optim 0.6.0; use max_lr= "
        "[breaks at mlax-optim==0.6.0]",
        "2 use(s) of deprecated mlax names; 2 break(s) at mlax-optim==0.6.0.",
    ]


def test_check_fix_rewrites_files_and_reports_the_rest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check", str(project), "--fix", "--json", "--target", "mlax-optim==0.6.0"])
    payload = json.loads(capsys.readouterr().out)
    assert status == 1  # the keyword inside **{...} is left for a human
    assert [(f["line"], f["used"]) for f in payload["fixed"]] == [(6, "weight_decay_rate")]
    assert [(f["line"], f["kind"], f["breaks_at_target"]) for f in payload["findings"]] == [
        (7, "keyword", True)
    ]
    text = (project / "pkg" / "train.py").read_text()
    assert text == SAMPLE.replace("weight_decay_rate=0.1", "weight_decay=0.1")
    ast.parse(text)
    assert (project / ".venv" / "ignored.py").read_text() == HIDDEN


KEYWORD_IMPORTS = (
    "import jax.numpy as jnp\nfrom mlax.experimental.optim import adafactor, prodigy\n"
)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "adafactor.init(w, weight_decay_rate=0.1)\n",
            "adafactor.init(w, weight_decay=0.1)\n",
            id="renamed",
        ),
        pytest.param(
            "adafactor.init(\n    w,\n    weight_decay_rate=0.1,  # decoupled\n    eps=1e-30,\n)\n",
            "adafactor.init(\n    w,\n    weight_decay=0.1,  # decoupled\n    eps=1e-30,\n)\n",
            id="renamed-in-a-multiline-call-keeps-comments",
        ),
        pytest.param(
            "import mlax.experimental.optim as mo\nmo.polyak_sgd.init(w, max_learning_rate=0.5)\n",
            "import mlax.experimental.optim as mo\nmo.polyak_sgd.init(w, max_lr=0.5)\n",
            id="renamed-through-a-module-alias",
        ),
        pytest.param(
            "from mlax.experimental.optim.lbfgs import init as start\nstart(w, max_learning_rate=1.0)\n",
            "from mlax.experimental.optim.lbfgs import init as start\nstart(w, max_lr=1.0)\n",
            id="renamed-on-an-imported-function",
        ),
        pytest.param(
            "from functools import partial\n"
            "make = partial(schedule_free_sgd.init, state_dtype=jnp.float32)\n",
            "from functools import partial\n"
            "make = partial(schedule_free_sgd.init, moments_dtype=jnp.float32)\n",
            id="renamed-through-functools-partial",
        ),
        pytest.param(
            "prodigy.init(w, betas=(0.8, 0.99), beta3=0.9)\n",
            "prodigy.init(w, b1=0.8, b2=0.99, b3=0.9)\n",
            id="split-literal-tuple-and-renamed",
        ),
        pytest.param(
            "prodigy.init(w, betas=[b, 1 - 1e-3])\n",
            "prodigy.init(w, b1=b, b2=1 - 1e-3)\n",
            id="split-literal-list-of-expressions",
        ),
    ],
)
def test_fix_rewrites_renamed_keywords(before: str, after: str) -> None:
    header = KEYWORD_IMPORTS + "from mlax.experimental.optim import schedule_free_sgd\n"
    result = scan_source(header + before, "sample.py", DEPRECATIONS)
    assert result.findings and all(f.fixable for f in result.findings)
    fixed = apply_edits(header + before, result.edits)
    assert fixed == header + after
    assert scan_source(fixed, "sample.py", DEPRECATIONS).findings == ()


@pytest.mark.parametrize(
    ("call", "used"),
    [
        pytest.param("prodigy.init(w, betas=betas)", "betas", id="split-not-a-literal"),
        pytest.param("prodigy.init(w, betas=(0.9,))", "betas", id="split-wrong-length"),
        pytest.param("prodigy.init(w, betas=(*bs,))", "betas", id="split-starred"),
        pytest.param("prodigy.init(w, betas=(0.9, 0.9), b2=0.9)", "betas", id="split-and-new"),
        pytest.param(
            "adafactor.init(w, weight_decay_rate=0.1, weight_decay=0.2)",
            "weight_decay_rate",
            id="renamed-and-new",
        ),
        pytest.param(
            "adafactor.init(w, **{'weight_decay_rate': 0.1})",
            "weight_decay_rate",
            id="renamed-in-literal-double-star",
        ),
    ],
)
def test_fix_leaves_keywords_that_need_a_human(call: str, used: str) -> None:
    result = scan_source(KEYWORD_IMPORTS + call + "\n", "sample.py", DEPRECATIONS)
    assert [(f.kind, f.used, f.fixable) for f in result.findings] == [("keyword", used, False)]
    assert result.edits == ()


def test_an_unfixable_split_keyword_says_what_to_write() -> None:
    (finding,) = scan_source(
        KEYWORD_IMPORTS + "prodigy.init(w, betas=betas)\n", "s.py", DEPRECATIONS
    ).findings
    assert finding.describe() == (
        "s.py:3:17: keyword betas= of mlax.experimental.optim.prodigy.init is deprecated since "
        "mlax-optim 0.4.0 and removed in mlax-optim 0.6.0; use b3= for beta3=, and b1=..., b2=... "
        "for betas=(b1, b2)"
    )


def test_check_fix_rewrites_renamed_keywords_in_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.py"
    train.write_text(KEYWORD_IMPORTS + "s = adafactor.init(w, weight_decay_rate=0.1)\n")
    assert main(["check", str(tmp_path), "--fix"]) == 0
    assert train.read_text() == KEYWORD_IMPORTS + "s = adafactor.init(w, weight_decay=0.1)\n"
    assert capsys.readouterr().out.splitlines()[-1] == (
        "0 use(s) of deprecated mlax names left after fixing 1."
    )


def test_check_reports_unparsable_files_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    assert main(["check", str(tmp_path)]) == 2
    assert "broken.py: cannot check" in capsys.readouterr().err


def test_check_notes_dynamic_keywords_without_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "train.py").write_text(
        "from mlax.experimental.optim import adafactor\nadafactor.init(w, **options)\n"
    )
    assert main(["check", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{tmp_path / 'train.py'}:2:19: note: cannot tell whether **options passes "
        "weight_decay_rate= to mlax.experimental.optim.adafactor.init, deprecated since mlax-optim "
        "0.4.0 and removed in mlax-optim 0.6.0"
    )


def test_check_json_survives_a_closed_pipe(tmp_path: Path) -> None:
    # Enough findings that the JSON outgrows the pipe's buffer while the reader has stopped reading.
    (tmp_path / "train.py").write_text(
        "import mlax.experimental.optim as mo\n"
        + "mo.adafactor.init(w, weight_decay_rate=0.1)\n" * 2000
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlax.experimental.core.deprecations",
            "check",
            str(tmp_path),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"{\n"
    process.stdout.close()  # what `| head -1` does after its line
    stderr = process.stderr.read().decode()
    assert process.wait() == 1
    assert stderr == ""
