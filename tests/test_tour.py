"""The tour end to end: REPORT.md's table, its verdicts, and every picture it links."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from dlbasics.data.mnist import DEBIAN_FASHION_MNIST
from dlbasics.tour import main


def run_tour(tmp_path, monkeypatch, *args: str) -> tuple[int, Path, str]:
    monkeypatch.chdir(tmp_path)
    code = main(["--quick", "--out", str(tmp_path / "tour"), *args])
    (tour_dir,) = (tmp_path / "tour").iterdir()
    return code, tour_dir, (tour_dir / "REPORT.md").read_text()


def table_rows(report: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in report.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:] if len(cells) == 7}


def assert_pictures_exist(tour_dir: Path, report: str) -> list[str]:
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    for link in links:
        assert (tour_dir / link).is_file(), link
    return links


def test_quick_tour_synthetic_sine_and_scratch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["dlbasics-tour", "--quick"])  # as from the console: LightningCLI warned then
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, tour_dir, report = run_tour(tmp_path, monkeypatch, "--only", "linear_regression", "rule_classifier",
                                          "sine_lstm")  # fmt: skip
    assert not [w for w in caught if "args parameter" in str(w.message)]  # printed with the whole argv, 7 times
    assert code == 0, report
    rows = table_rows(report)
    assert set(rows) == {"linear_regression", "rule_classifier", "sine_lstm", "scratch"}
    assert all(row[4] == "pass" for row in rows.values()), rows
    assert "w = [2, -3.4], b = 4.2" in rows["linear_regression"][2]
    assert rows["scratch"][3].endswith("checks pass")
    links = assert_pictures_exist(tour_dir, report)
    assert any("learning_curves" in link for link in links) and any("forecast" in link for link in links)
    assert any("confusion_matrix" in link for link in links)
    assert "[4/4] scratch" in capsys.readouterr().out  # progress: which experiment, how far


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_quick_tour_everything(tmp_path, monkeypatch):
    code, tour_dir, report = run_tour(tmp_path, monkeypatch)
    rows = table_rows(report)
    assert len(rows) == 11 and code == 0, report  # 7 experiments, 3 comparisons (dlbasics sweep), scratch
    for name in ("mnist_mlp_fishbook", "mnist_cnn"):
        assert rows[name][1] in ("MNIST", "Fashion-MNIST") and rows[name][4] == "pass", rows[name]
    links = assert_pictures_exist(tour_dir, report)
    assert any("misclassified" in link for link in links) and any("activations" in link for link in links)


def test_unknown_experiment_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "resnet"])
    assert exit_info.value.code == 2 and "unknown experiment(s) ['resnet']" in capsys.readouterr().err
