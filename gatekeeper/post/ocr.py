"""Reading pages that are only pictures: poppler's `pdftoppm` renders, `tesseract` reads.

Used only when both programs are installed; without them an image-only letter
is held for a person. Each call has a time limit, and any failure is None, so
a broken scan never stops the letters service.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

OCR_DPI = 300
OCR_SECONDS = 60.0


def ocr_available() -> bool:
    return bool(shutil.which("tesseract") and shutil.which("pdftoppm"))


def ocr_page(
    pdf: Path,
    page: int,
    region: tuple[float, float, float, float] | None = None,
    dpi: int = OCR_DPI,
) -> str | None:
    """The text tesseract reads on page `page` (1-based) of `pdf`, or None if it could not.

    `region` is (left, top, width, height) in PDF points from the page's top left: only
    that part is rendered (the address window).
    """
    with tempfile.TemporaryDirectory(prefix="gatekeeper-ocr-") as folder:
        image = Path(folder) / "page"
        command = ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile"]
        command += ["-f", str(page), "-l", str(page)]
        if region is not None:
            scale = dpi / 72
            left, top, width, height = (round(v * scale) for v in region)
            command += ["-x", str(left), "-y", str(top), "-W", str(width), "-H", str(height)]
        try:
            subprocess.run(
                [*command, str(pdf), str(image)],
                check=True,
                capture_output=True,
                timeout=OCR_SECONDS,
            )
            # psm 4: one column of text of varying sizes, as a letter or an address block is.
            result = subprocess.run(
                ["tesseract", str(image.with_suffix(".png")), "stdout", "--psm", "4"],
                check=True,
                capture_output=True,
                timeout=OCR_SECONDS,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    return result.stdout.decode("utf-8", "replace")
