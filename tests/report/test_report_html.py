"""`hpstudy report --output` with the best models evaluated: figures, tables, and the HTML page in a real browser."""
import base64
import io
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


# The study's own figures of the two-trial finished_study (no importance: too few trials; no seed repeats),
# then the best model's confusion matrix, test images and learning curves.
STUDY_FIGURES = ("effects", "parallel", "history", "pareto", "curves")
IMAGES = len(STUDY_FIGURES) + 3


def test_html_report_embeds_the_study_figures_and_the_best_models(html_report):
    path, out = html_report
    page = out.read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.sources) == IMAGES
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.split(",", 1)[1])
        assert png.startswith(b"\x89PNG")
        with Image.open(io.BytesIO(png)) as image:
            pixels = image.convert("L")
            assert image.size[0] > 200 and pixels.getextrema()[0] < 100, "a blank figure"
    assert page.index("<h3>Figures: tiny</h3>") < page.index("best model 1")
    assert "effect of each hyperparameter" in page and "optimization history" in page
    assert re.search(r"best model 1 \(trial \d+\), test accuracy 0\.\d{4}", page)
    assert "precision" in page and "recall" in page and "f1-score" in page
    figures = sorted((out.parent / "report_figures" / path.name).glob("*.png"))
    assert len(figures) == 3             # the page embeds the study's figures: no files for them
    for figure in figures:
        with Image.open(figure) as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_markdown_report_links_figures_that_exist(finished_study, tmp_path):
    path, _ = finished_study
    out = tmp_path / "r.md"
    assert cli.main(["report", str(path), "--output", str(out)]) == 0
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text())
    assert len(links) == IMAGES and all((tmp_path / link).is_file() for link in links)
    assert links[:len(STUDY_FIGURES)] == [f"r_figures/{path.name}/{name}.png" for name in STUDY_FIGURES]
    for link in links:
        with Image.open(tmp_path / link) as image:
            assert image.size[0] > 200 and image.convert("L").getextrema()[0] < 100, link


@pytest.mark.parametrize("argv", [["--best", "1"], ["--best", "1", "--format", "csv", "--output", "x.csv"]])
def test_best_needs_a_report_file_with_room_for_figures(finished_study, tmp_path, capsys, argv):
    path, _ = finished_study
    argv = [a.replace("x.csv", str(tmp_path / "x.csv")) for a in argv]
    assert cli.main(["report", str(path), *argv]) == 2
    assert "--best: evaluating models needs --output" in capsys.readouterr().err


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
_DRAWN = """
window.addEventListener("load", () => {
  const drawn = [...document.images].filter(image => {
    if (!image.complete || image.naturalWidth === 0) return false;
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let dark = 0;
    for (let k = 0; k < data.length; k += 4) if (data[k] < 200) dark++;
    return dark > 0.01 * canvas.width * canvas.height;
  });
  document.body.dataset.images = drawn.length + ":" + document.images.length;
});
"""


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (CI installs Debian's)")
def test_html_report_renders_in_a_real_browser(html_report, tmp_path):
    _, out = html_report
    # The page itself has no script; a copy gets one that records, once the page has loaded, how many images
    # decoded (naturalWidth > 0) with at least 1% of their pixels drawn dark (not a blank), of how many.
    check = tmp_path / "check.html"
    check.write_text(out.read_text().replace("</body>", f"<script>{_DRAWN}</script></body>"))
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([*common, "--virtual-time-budget=10000", "--dump-dom", check.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert f'data-images="{IMAGES}:{IMAGES}"' in dom.stdout, (re.findall(r'data-images="[^"]*"', dom.stdout),
                                                              dom.stderr[-1000:])
    shot = tmp_path / "page.png"
    subprocess.run([*common, "--window-size=1280,2000", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        colours = image.convert("L").getextrema()
    assert colours[0] < 100 < colours[1], "the page rendered text and figures, not a blank"
