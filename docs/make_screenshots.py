"""Make the README's pictures: the Fleet in a notebook, a chart, the workbook's Summary.

Run ``python docs/make_screenshots.py`` from the repository; it writes into
``docs/``, in a few seconds, on the bundled sample fleet:

- ``fleet-html.png``: what a Fleet shows as the last line of a notebook cell,
  taken by headless Chromium from a page styled as JupyterLab styles output;
- ``states-by-node.png``: ``fleet.patches.pf.states_by_node(top=15)``, by
  matplotlib;
- ``workbook-summary.png``: the workbook's Summary sheet as LibreOffice prints
  it (converted to PDF, then to PNG by poppler's ``pdftoppm``).

Needs, beyond patchframe's own dependencies: Chromium, LibreOffice (Calc) and
poppler-utils (Debian: ``apt-get install chromium libreoffice-calc-nogui
poppler-utils``). Not part of the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

import patchframe as pf

DOCS = Path(__file__).resolve().parent
MARGIN = 12  # pixels of white kept around the cropped content
# JupyterLab's look for rendered HTML output (its rendermime CSS, simplified).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
body {{ margin: 16px; font-family: system-ui, -apple-system, "Segoe UI", Roboto,
       "DejaVu Sans", sans-serif; font-size: 13px; color: #212121; background: #fff; }}
table {{ border-collapse: collapse; border-spacing: 0; border: none; font-size: 12px; }}
thead {{ border-bottom: 1px solid #616161; vertical-align: bottom; }}
td, th {{ text-align: right; vertical-align: middle; padding: 0.3em 0.6em;
          line-height: normal; }}
tbody tr:nth-child(odd) {{ background: #f5f5f5; }}
</style></head><body style="width: {width}px">{body}</body></html>
"""


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"{names[0]} is not installed: see this script's documentation")


def _crop(path: Path, *, colors: int | None = None, footer: float = 0.0) -> None:
    """Cut the white around the content (and the bottom ``footer`` share of the
    picture: a printed page's footer); fewer colours make a smaller PNG."""
    image = Image.open(path).convert("RGB")
    if footer:
        image = image.crop((0, 0, image.width, round(image.height * (1 - footer))))
    box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if box is not None:
        left, top, right, bottom = box
        image = image.crop(
            (
                max(left - MARGIN, 0),
                max(top - MARGIN, 0),
                min(right + MARGIN, image.width),
                min(bottom + MARGIN, image.height),
            )
        )
    if colors is not None:
        image = image.quantize(colors=colors, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def fleet_html(fleet: pf.Fleet, out: Path, work: Path) -> None:
    page = work / "fleet.html"
    page.write_text(PAGE.format(width=760, body=fleet._repr_html_()), encoding="utf-8")
    subprocess.run(
        [
            _tool("chromium", "chromium-browser", "google-chrome"),
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1.5",
            "--window-size=820,560",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    _crop(out, colors=64)


def chart(fleet: pf.Fleet, out: Path) -> None:
    ax = fleet.patches.pf.states_by_node(top=15)
    figure = ax.get_figure()
    assert figure is not None
    figure.set_size_inches(8, 4.8)
    figure.savefig(out, dpi=110, bbox_inches="tight")
    _crop(out, colors=64)


def workbook_summary(fleet: pf.Fleet, out: Path, work: Path) -> None:
    book = pf.to_excel(fleet, work / "patch-compliance.xlsx", progress=False)
    subprocess.run(
        [
            _tool("soffice", "libreoffice"),
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(work),
            str(book),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Page 1 is the Summary sheet.
    stem = work / "summary"
    subprocess.run(
        [
            _tool("pdftoppm"),
            "-png",
            "-r",
            "150",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(book.with_suffix(".pdf")),
            str(stem),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    shutil.move(stem.with_suffix(".png"), out)
    _crop(out, colors=64, footer=0.08)


def main() -> int:
    fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    with tempfile.TemporaryDirectory(prefix="patchframe-docs-") as name:
        work = Path(name)
        fleet_html(fleet, DOCS / "fleet-html.png", work)
        chart(fleet, DOCS / "states-by-node.png")
        workbook_summary(fleet, DOCS / "workbook-summary.png", work)
    for png in ("fleet-html.png", "states-by-node.png", "workbook-summary.png"):
        size = (DOCS / png).stat().st_size
        print(f"docs/{png}: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
