"""Open an HTML report in headless Chromium (Debian's ``chromium``) and count the images
that loaded: the check that a report's embedded charts really display in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

#: marks <body> with "loaded/total" once the page and its images have loaded
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});
</script>"""


def chromium() -> str:
    """The browser's path; a clear failure (never a skip) when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: the HTML report test needs it; run "
                    "scripts/install-system.sh (Debian's chromium package)", pytrace=False)
    return path


def images_loaded(html: Path, work: Path) -> tuple[int, int]:
    """(images loaded, images) of ``html``, opened from a copy with a probe script added
    (the report itself has no script)."""
    text = html.read_text(encoding="utf-8")
    assert "</body>" in text
    probe = work / f"probe-{html.name}"
    probe.write_text(text.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--virtual-time-budget=5000", f"--user-data-dir={work / 'chromium-profile'}",
         "--dump-dom", probe.resolve().as_uri()],
        capture_output=True, timeout=120, check=False)
    dom = proc.stdout.decode("utf-8", errors="replace")
    found = re.search(r'<body[^>]*\bdata-images="(\d+)/(\d+)"', dom)
    assert found, (f"chromium exited {proc.returncode} without the probe's mark: "
                   f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1)), int(found.group(2))
