"""The `flux` command's cheap paths: validation output and argument errors (no model loaded)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from flux_agent.cli import CLIError, app
from flux_agent.templates import default_library_path

runner = CliRunner()


def test_validate_passes_on_the_shipped_library():
    result = runner.invoke(app, ["library", "validate", "--no-duplicates"])
    assert result.exit_code == 0, result.output
    assert "templates valid" in result.output


def test_validate_fails_on_a_broken_copy_naming_file_and_field(tmp_path):
    library = tmp_path / "lib"
    shutil.copytree(default_library_path(), library)
    target = library / "algebra" / "vieta_sum_product.yaml"
    target.write_text(target.read_text().replace('answer: "8"', 'answer: "9"'))
    result = runner.invoke(app, ["library", "validate", str(library), "--no-duplicates"])
    assert result.exit_code == 1
    assert "vieta_sum_product.yaml: check: evaluates to 8" in result.output.replace("\n", "")


def test_bad_input_is_a_cli_error_not_a_traceback(tmp_path):
    empty = runner.invoke(app, ["solve", "  ", "--data-dir", str(tmp_path)])
    assert isinstance(empty.exception, CLIError) and "empty" in str(empty.exception)
    spec = runner.invoke(app, ["solve", "2+2?", "--solver", "ftp://nowhere"])
    assert isinstance(spec.exception, CLIError) and "backend spec" in str(spec.exception)
    missing = runner.invoke(app, ["show", "nope", "--data-dir", str(tmp_path)])
    assert isinstance(missing.exception, CLIError) and "no run with id" in str(missing.exception)


def test_help_explains_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("solve", "resume", "show", "library", "eval", "serve"):
        assert command in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("flux-agent ")


def test_serve_rejects_bad_options_before_loading_anything(tmp_path):
    backend = runner.invoke(
        app, ["serve", "--backend", "no-equals-sign", "--data-dir", str(tmp_path)]
    )
    assert isinstance(backend.exception, CLIError) and "NAME=SPEC" in str(backend.exception)
    spec = runner.invoke(app, ["serve", "--backend", "big=ftp://x", "--data-dir", str(tmp_path)])
    assert isinstance(spec.exception, CLIError) and "--backend big" in str(spec.exception)
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "FLUX_API_KEY" in help_text and "429" in help_text


def test_train_commands_explain_what_is_missing_before_any_work(tmp_path):
    recipe = str(Path(__file__).resolve().parents[2] / "training" / "recipes" / "smoke.yaml")
    out = f"output_dir={tmp_path}"
    no_sft = runner.invoke(app, ["train", "rl", recipe, "--set", out])
    assert isinstance(no_sft.exception, CLIError)
    assert "run `flux train sft` with this recipe first" in str(no_sft.exception)
    typo = runner.invoke(app, ["train", "rl", recipe, "--set", "rl.sampels=3"])
    assert isinstance(typo.exception, CLIError) and "rl.sampels" in str(typo.exception)
    nothing = runner.invoke(
        app, ["train", "compare", recipe, "--set", out, "--set", "rl.start=sft"]
    )
    assert isinstance(nothing.exception, CLIError) and "flux train sft" in str(nothing.exception)
    bad_solver = runner.invoke(
        app,
        [
            "train",
            "rl",
            recipe,
            "--set",
            out,
            "--set",
            "rl.start=base",
            "--set",
            "rl.solver=ftp://x",
        ],
    )
    # The solver spec is read before the base model is loaded or anything is indexed.
    assert isinstance(bad_solver.exception, CLIError) and "ftp://x" in str(bad_solver.exception)
    assert not (tmp_path / "rl" / "start").exists()
