"""`hpstudy report --output` with the best models evaluated: figures, tables, and the HTML page in a real browser."""
import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from PIL import Image

from hpstudy import cli


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


@pytest.fixture(scope="module")
def html_report(finished_study, tmp_path_factory):
    path, _ = finished_study
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert cli.main(["report", str(path), "--format", "html", "--output", str(out)]) == 0
    return path, out


def test_html_report_embeds_the_best_models_figures(html_report):
    path, out = html_report
    page = out.read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.sources) == 3      # confusion matrix, test images, learning curves
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.split(",", 1)[1])
        assert png.startswith(b"\x89PNG")
    assert re.search(r"best model 1 \(trial \d+\), test accuracy 0\.\d{4}", page)
    assert "precision" in page and "recall" in page and "f1-score" in page
    figures = sorted((out.parent / "report_figures" / path.name).glob("*.png"))
    assert len(figures) == 3
    for figure in figures:
        with Image.open(figure) as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_markdown_report_links_figures_that_exist(finished_study, tmp_path):
    path, _ = finished_study
    out = tmp_path / "r.md"
    assert cli.main(["report", str(path), "--output", str(out)]) == 0
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text())
    assert len(links) == 3 and all((tmp_path / link).is_file() for link in links)


@pytest.mark.parametrize("argv", [["--best", "1"], ["--best", "1", "--format", "csv", "--output", "x.csv"]])
def test_best_needs_a_report_file_with_room_for_figures(finished_study, tmp_path, capsys, argv):
    path, _ = finished_study
    argv = [a.replace("x.csv", str(tmp_path / "x.csv")) for a in argv]
    assert cli.main(["report", str(path), *argv]) == 2
    assert "--best: evaluating models needs --output" in capsys.readouterr().err


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (CI installs Debian's)")
def test_html_report_renders_in_a_real_browser(html_report, tmp_path):
    _, out = html_report
    # The page itself has no script; a copy gets one that records whether every image decoded.
    check = tmp_path / "check.html"
    check.write_text(out.read_text().replace("</body>", "<script>document.body.dataset.images = [...document.images]"
                                             ".every(i => i.complete && i.naturalWidth > 0) + ':' + "
                                             "document.images.length;</script></body>"))
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([*common, "--dump-dom", check.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'data-images="true:3"' in dom.stdout, dom.stderr[-1000:]
    shot = tmp_path / "page.png"
    subprocess.run([*common, "--window-size=1280,2000", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        colours = image.convert("L").getextrema()
    assert colours[0] < 100 < colours[1], "the page rendered text and figures, not a blank"
