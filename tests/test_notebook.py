"""hpstudy in a notebook: a real notebook, executed headlessly (nbclient, one ipykernel), runs a tiny study; its
progress is an HTML bar redrawn in place (no carriage-return lines) and the Study shows as an HTML summary."""
import sys

import pytest

from tests.helpers import REPO, TINY

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _outputs(cell, kind):
    return [o for o in cell.outputs if o.output_type == kind]


@pytest.mark.slow
def test_a_study_run_in_a_notebook_shows_an_html_bar_and_an_html_summary(tmp_path):
    study = tmp_path / "tiny.yaml"
    study.write_text("# Does dropout help a tiny CNN?\n" + TINY.format(name="tiny"))
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import sys; sys.path.insert(0, {str(REPO)!r})\nimport hpstudy\n"
                                  "assert hpstudy.__file__.startswith(sys.path[0])"),
        nbformat.v4.new_code_cell(f"study = hpstudy.run({str(study)!r}, results_dir={str(tmp_path / 'r')!r})"),
        nbformat.v4.new_code_cell("study")])
    # jupyter_client starts the kernel with this interpreter ("python" in a kernelspec is sys.executable) and
    # this process's environment (KERAS_BACKEND, TF_CPP_MIN_LOG_LEVEL as the suite sets them).
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    _, run, shown = notebook.cells
    bars = [o for o in _outputs(run, "display_data") if "hpstudy-progress" in o.data.get("text/html", "")]
    assert len(bars) == 1, run.outputs                   # one bar, redrawn in place: not one per step
    bar = bars[0].data["text/html"]
    assert '<progress value="2" max="2"' in bar and "2 trials &middot; done" in bar     # its last state
    lines = "".join(o.text for o in _outputs(run, "stream"))
    assert "\r" not in lines and lines.count("trial ") >= 2 and "val_accuracy=" in lines
    summary = _outputs(shown, "execute_result")[0].data
    assert summary["text/plain"].startswith("Study(")
    page = summary["text/html"]
    assert 'class="hpstudy-summary"' in page
    assert "<b>Question:</b> Does dropout help a tiny CNN?" in page
    assert "<b>Best configuration:</b> model.dropout=" in page
    assert "Top 2 trials" in page and page.count("<tr") == 3     # the header and the two trials
    assert "optimization history" in page and page.count("data:image/png;base64,") >= 1   # the key plots


def test_a_notebook_is_told_from_a_terminal(monkeypatch):
    import types

    from hpstudy.engine import progress

    assert not progress.in_notebook()                    # pytest: no IPython kernel
    shells = {"ZMQInteractiveShell": True, "TerminalInteractiveShell": False}
    for name, expected in shells.items():
        shell = type(name, (), {"config": {}})()
        monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda shell=shell: shell))
        assert progress.in_notebook() is expected
    colab = type("Shell2", (), {"config": {"IPKernelApp": {}}})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: colab))
    assert progress.in_notebook()
