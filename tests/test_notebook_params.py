"""omniad_lite.notebook_params: notebook parameters → validated ExperimentConfig, clear one-line errors."""
from __future__ import annotations

import pytest

from omniad_lite import presets
from omniad_lite.notebook_params import (
    NotebookParameterError,
    check_injected_parameters,
    check_param,
    experiment_from_params,
    output_path,
)


def test_params_map_to_config_keys_and_none_keeps_preset():
    cfg = experiment_from_params("demo", ["model.ffn=resampled"], epochs=2, iterations=None, device="cpu",
                                 classes=["brick"], data_root=None)
    base = presets.get("demo")
    assert cfg.train.epochs == 2 and cfg.train.iterations is None and cfg.model.ffn == "resampled"
    assert cfg.data.classes == ["brick"]
    assert base.train.device == "cpu"  # so device="cpu" changes nothing
    assert sorted(cfg.diff(base)) == ["data.classes", "model.ffn", "train.epochs"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="nope"), "unknown preset 'nope'"),
    (dict(preset="demo", epochs="two"), "train.epochs='two' has type str"),
    (dict(preset="demo", batch_size=True), "train.batch_size=True has type bool"),
    (dict(preset="demo", overrides=["model.nope=1"]), "unknown config key 'model.nope'"),
    (dict(preset="demo", overrides="model.ffn=resampled"), "must be a list"),
    (dict(preset="demo", classes="brick"), "must be a list of class names"),
    (dict(preset="demo", lr=1.0), "unknown notebook parameter"),
])
def test_bad_params_raise_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        experiment_from_params(**kwargs)
    assert "\n" not in str(err.value)


def test_check_param_and_output_path(tmp_path):
    assert check_param("n", 3, int, positive=True) == 3
    with pytest.raises(ValueError, match="n=0 must be a positive int"):
        check_param("n", 0, int, positive=True)
    with pytest.raises(ValueError, match="n=True must be int"):
        check_param("n", True, int)
    out = output_path(str(tmp_path / "a" / "b"))
    assert out.is_dir()
    with pytest.raises(ValueError, match="output_dir=3"):
        output_path(3)


PARAMS_CELL = 'preset = "demo"   # a comment\nepochs = None\nnum_cases: int = 4\n'


@pytest.mark.parametrize("injected, message", [
    ("# Parameters\nepoch = 5\n", "'epoch' is not a parameter of this notebook (did you mean 'epochs'?)"),
    ("# Parameters\nepochs = 5\nnum_case = 2\n", "(did you mean 'num_cases'?)"),
    ("# Parameters\nzzz = 1\n", "'zzz' is not a parameter of this notebook. Its parameters: preset, epochs, num_cases"),
])
def test_injected_parameter_not_declared_is_an_error(injected, message):
    history = ["", "import sys", PARAMS_CELL, injected, "check_injected_parameters()"]
    with pytest.raises(NotebookParameterError) as err:
        check_injected_parameters(history)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_injected_parameters_that_exist_pass():
    history = ["", PARAMS_CELL, "# Parameters\nepochs = 5\npreset = \"paper-mvtec\"\n", "x = 1"]
    assert check_injected_parameters(history) == ["epochs", "preset"]
    assert check_injected_parameters(["", PARAMS_CELL, "x = 1"]) == []  # nothing injected (JupyterLab, nbval)
    # a later papermill-looking cell is the one checked (a re-run output notebook)
    assert check_injected_parameters(["", PARAMS_CELL, "# Parameters\nepochs = 1\n",
                                      "y = 2", PARAMS_CELL, "# Parameters\npreset = 'demo'\n"]) == ["preset"]


def test_injected_check_reads_ipython_history(monkeypatch):
    class Shell:
        user_ns = {"In": ["", PARAMS_CELL, "# Parameters\nepoch = 5\n"]}

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    with pytest.raises(NotebookParameterError, match="did you mean 'epochs'"):
        check_injected_parameters()


def test_parameter_errors_render_as_one_line_in_ipython():
    """IPython shows an exception's _render_traceback_ instead of the traceback: one line, the message."""
    err = NotebookParameterError("parameter epochs='two' must be int")
    assert err._render_traceback_() == ["NotebookParameterError: parameter epochs='two' must be int"]
    assert isinstance(err, ValueError)


def test_messages_name_the_notebook_parameter(tmp_path):
    with pytest.raises(NotebookParameterError, match=r"parameter epochs='two' is not valid: .*train.epochs"):
        experiment_from_params("demo", epochs="two")
    with pytest.raises(NotebookParameterError, match=r"did you mean 'paper-mvtec'"):
        experiment_from_params("paper-mvtek")
    missing = tmp_path / "nope"
    with pytest.raises(NotebookParameterError) as err:
        experiment_from_params("demo", data_root=str(missing))
    assert f"parameter data_root='{missing}': no such folder" in str(err.value)
    assert "--data-root" not in str(err.value)  # notebook wording, not the CLI's
    assert experiment_from_params("demo", data_root=str(tmp_path)).data.root == str(tmp_path)
