"""What an auditor does in the Dagster UI, as small steps the browser tests compose: open an
asset, follow a lineage link, read a metadata entry, open a piece of evidence through its link.
A step names what it looks for the way the page shows it, so a change of the UI or of the
metadata is one edit here."""

from __future__ import annotations

import contextlib
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (scripts/bootstrap.sh); Playwright downloads no browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("NEXUS_UI_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "test-results" / "ui")
TIMEOUT_MS = 60_000  # a busy 2-core machine renders the asset page in seconds, not a minute


def launch(playwright, user_data_dir: Path):
    """Debian's Chromium, headless, with a fresh profile (Playwright takes the profile folder as
    launch_persistent_context's argument, not as --user-data-dir)."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1600, "height": 1000}, accept_downloads=True)


@dataclass
class Evidence:
    url: str
    content_type: str
    body: bytes


class Auditor:
    """One browser tab on the webserver at base, saving screenshots as <prefix>-NN-<name>.png."""

    def __init__(self, page, base: str, prefix: str) -> None:
        self.page, self.base, self.prefix, self.shots = page, base.rstrip("/"), prefix, 0
        page.set_default_timeout(TIMEOUT_MS)

    # --- moving around ---------------------------------------------------------------
    def open(self, key: str, view: str = "") -> None:
        """The asset's page (key as Dagster prints it: image/users), rendered."""
        self.page.goto(f"{self.base}/assets/{key}" + (f"?view={view}" if view else ""))
        self._rendered(key, overview=not view)

    def follow(self, key: str) -> None:
        """Click the link to asset key in the page's lineage (upstream or downstream assets), as an
        auditor walks the chain; fails when the page does not link to it."""
        link = self.page.locator(f'a[href="/assets/{key}"]').first
        link.wait_for(state="visible")
        link.click()
        self.page.wait_for_url(re.compile(re.escape(f"/assets/{key}") + r"(\?.*)?$"))
        self._rendered(key)

    def tab(self, name: str) -> None:
        """One of the asset page's tabs (Overview, Events, Checks, Lineage)."""
        self.page.get_by_role("tab", name=name).first.click()
        self.page.wait_for_load_state("networkidle")
        self._dismiss_dialogs()

    def lineage_links(self) -> set[str]:
        """The asset keys the page links to in its lineage section (upstream and downstream)."""
        # The lineage section arrives after the header (whose links carry a ?view=): wait for it.
        self.page.locator('a[href^="/assets/"]:not([href*="?"])').first.wait_for(state="visible")
        hrefs = self.page.locator('a[href^="/assets/"]').evaluate_all("els => els.map(e => e.getAttribute('href'))")
        return {h.removeprefix("/assets/") for h in hrefs if "?" not in h}

    # --- reading ---------------------------------------------------------------------
    def entry(self, name: str) -> str:
        """The text of metadata entry name in the asset's metadata table."""
        cell = self.page.locator(f"xpath=//tr[td[1][normalize-space()='{name}']]/td[last()]").first
        cell.wait_for(state="visible")
        return cell.inner_text().strip()

    def entries(self) -> set[str]:
        keys = self.page.locator("xpath=//tr/td[1]").all_inner_texts()
        return {k.strip() for k in keys}

    def title(self) -> str:
        """What the page's header (the breadcrumb) names the asset."""
        return self.page.title()

    def evidence_link(self, fragment: str):
        """The link (an <a> to http(s)) whose address names the file fragment (build_users.log,
        .pdf), or None: a path entry today is text to copy, not a link."""
        links = self.page.locator(f'a[href^="http"][href*="{fragment}"]')
        return links.first if links.count() else None

    def open_evidence(self, fragment: str) -> Evidence:
        """Click the evidence link naming fragment; the tab it opens is the auditor's view of
        the file (shown or downloaded, as the browser does with that type), its bytes what the
        server sent. Fails, naming the fragment, when there is no such link."""
        link = self.evidence_link(fragment)
        assert link is not None, f"no link to {fragment!r} on {self.page.url}: the evidence is not one click away"
        href = link.get_attribute("href") or ""
        name = f"evidence-{re.sub(r'[^A-Za-z0-9_.-]', '_', fragment)}"
        if link.get_attribute("target") == "_blank":
            with self.page.context.expect_page() as opened:
                link.click()
            tab = opened.value
            # A tab that downloads its file (a PDF where headless Chromium has no viewer) may
            # close before its picture: the bytes below are the evidence, the picture a courtesy.
            with contextlib.suppress(Exception):
                tab.wait_for_load_state()
                self.shot(name, tab)
                tab.close()
        else:
            back = self.page.url
            link.click()
            self.page.wait_for_load_state()
            self.shot(name)
            self.page.goto(back)
        with urllib.request.urlopen(href, timeout=30) as answer:  # what the link serves, byte for byte
            return Evidence(href, answer.headers.get("Content-Type", ""), answer.read())

    # --- recording -------------------------------------------------------------------
    def shot(self, name: str, page=None) -> Path:
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{self.shots:02d}-{name.replace('/', '_')}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path

    # --- internals -------------------------------------------------------------------
    def _rendered(self, key: str, overview: bool = True) -> None:
        # The header names the asset at once; the overview's sections (status, metadata, lineage)
        # arrive after it, the lineage section last: a page is read, and pictured, once it shows.
        self.page.get_by_text(key.split("/")[-1], exact=True).first.wait_for(state="visible")
        if overview:
            self.page.get_by_text("Upstream assets", exact=True).first.wait_for(state="visible")
        self.page.wait_for_load_state("networkidle")
        self._dismiss_dialogs()

    def _dismiss_dialogs(self) -> None:
        # The webserver's first visit asks to join its community: the auditor skips it.
        skip = self.page.get_by_role("button", name="Skip")
        if skip.count() and skip.first.is_visible():
            skip.first.click()
