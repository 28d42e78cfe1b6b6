"""The Zabbix frontend in a real browser: Debian's chromium, driven through Debian's chromedriver (headless,
no download: the drivers are the packages'). Logs in as a user does and reads a host's template dashboard
page by page: what each widget shows, and a screenshot of each page."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import wait
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from exporter.catalog.zabbix import COLORS

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# what a widget shows when it cannot draw: error boxes, Zabbix's "nothing here" messages
BROKEN = (".msg-bad", ".msg-warning", ".dashboard-grid-iterator-too-small", ".no-data-message")
LEGEND_SWATCHES_PX = 40     # the legend's colour swatches lie left of this column, the plot right of it
LINE_PIXELS = 20            # a drawn line: a few values' worth of it


def missing() -> list[str]:
    return [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]


@dataclass
class Widget:
    name: str
    kind: str                   # graph, graphprototype
    problem: str                # the error it shows, or ""
    graphs: int                 # charts drawn (a graph prototype draws one per discovered graph)
    blank: int                  # of which show no line at all

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}: {self.problem or f'{self.graphs} graphs, {self.blank} blank'}"


class Frontend:
    def __init__(self, url: str, width: int = 1600, height: int = 2000) -> None:
        self.url = url.rstrip("/") + "/"
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={width},{height}", "--lang=en-US"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(60)

    def close(self) -> None:
        self.driver.quit()

    def login(self, user: str = "Admin", password: str = "zabbix") -> None:
        d = self.driver
        d.get(self.url + "index.php")
        d.find_element(By.ID, "name").send_keys(user)
        d.find_element(By.ID, "password").send_keys(password)
        d.find_element(By.ID, "enter").click()
        if not wait(lambda: "action=dashboard" in d.current_url or d.find_elements(By.CSS_SELECTOR, "main"), 30):
            raise RuntimeError(f"the Zabbix frontend did not log in: {d.current_url}")

    def host_dashboard(self, hostid: str, dashboardid: str, period: str) -> None:
        """Opens a template dashboard of the host over the period."""
        d = self.driver
        d.get(f"{self.url}zabbix.php?action=host.dashboard.view&hostid={hostid}&dashboardid={dashboardid}"
              f"&from={period}&to=now")
        wait(lambda: d.find_elements(By.CSS_SELECTOR, ".dashboard-grid-widget"), 30)
        # a template dashboard starts its slideshow: stopped, so each page stays while it is read
        for button in d.find_elements(By.CSS_SELECTOR, ".btn-dashboard-toggle-slideshow.slideshow-state-started"):
            if button.is_displayed():
                button.click()

    def _tabs(self) -> list:
        """The page tabs, shown when a dashboard has more than one page."""
        return [t for t in self.driver.find_elements(By.CSS_SELECTOR, ".dashboard-navigation-tabs li") if t.is_displayed()]

    def open_page(self, index: int) -> None:
        tabs = self._tabs()
        if tabs:
            tabs[index].click()

    def widgets(self, names: list[str], settle_s: float = 60) -> list[Widget]:
        """The widgets of the page on show, once they are the page's own (the names it was given: not the
        previous page's, still on show right after a click) and each has drawn, or settle_s has passed. A graph
        prototype widget (an iterator) counts the graphs it discovered."""
        found: list[Widget] = []

        def drawn() -> bool:
            try:
                found[:] = [self._widget(w) for w in self.driver.find_elements(
                    By.CSS_SELECTOR, ".dashboard-grid-iterator, .dashboard-grid > .dashboard-grid-widget")]
            except WebDriverException:          # the page redrew its widgets meanwhile
                return False
            return sorted(w.name for w in found) == sorted(names) and all(w.problem or w.graphs for w in found)
        wait(drawn, settle_s, step=2)
        shown = {w.name for w in found}
        return found + [Widget(name, "widget", "not on the page", 0, 0) for name in names if name not in shown]

    def _widget(self, element) -> Widget:
        iterator = "dashboard-grid-iterator" in (element.get_attribute("class") or "").split()
        kind = "graphprototype" if iterator else "graph"
        head = ".dashboard-grid-iterator-header h4" if iterator else ".dashboard-grid-widget-header h4"
        name = element.find_element(By.CSS_SELECTOR, head).get_attribute("textContent") or ""
        for selector in BROKEN:
            for box in element.find_elements(By.CSS_SELECTOR, selector):
                if box.is_displayed() and box.text.strip():
                    return Widget(name, kind, box.text.strip().replace("\n", " "), 0, 0)
        charts = [img for img in element.find_elements(By.CSS_SELECTOR, "img")
                  if self.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)]
        blank = sum(1 for img in charts if self.line_pixels(img) < LINE_PIXELS)
        return Widget(name, kind, "", len(charts), blank)

    def line_pixels(self, img) -> int:
        """Pixels of the chart's plot in the catalog's graph colours: a chart with data draws its lines in them,
        one without only its legend's swatches (at the left edge, left out here, as the y axis's labels keep
        the plot clear of it). Read in the browser from a canvas (the image comes from the same origin)."""
        script = """
            const img = arguments[0], colours = new Set(arguments[1]), left = arguments[2];
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            const hex = n => n.toString(16).padStart(2, '0').toUpperCase();
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
                if ((i / 4) % c.width >= left && colours.has(hex(d[i]) + hex(d[i + 1]) + hex(d[i + 2]))) n++;
            return n;
        """
        try:
            return int(self.driver.execute_script(script, img, list(COLORS), LEGEND_SWATCHES_PX))
        except WebDriverException:
            return 0

    def read_dashboards(self, api, hosts: list[str], out: Path, period: str = "now-5m") -> dict[str, list[Widget]]:
        """Every page of every template dashboard of the hosts: {"host / page": its widgets}, a screenshot of
        each page saved in out as HOST-PAGE.png."""
        pages: dict[str, list[Widget]] = {}
        for host in api.host.get(filter={"host": hosts}, output=["host"], selectParentTemplates=["templateid"]):
            templates = [t["templateid"] for t in host["parentTemplates"]]
            for board in api.templatedashboard.get(templateids=templates, output=["dashboardid"],
                                                   selectPages=["name", "widgets"]):
                self.host_dashboard(host["hostid"], board["dashboardid"], period)
                for n, page in enumerate(board["pages"]):
                    self.open_page(n)
                    pages[f"{host['host']} / {page['name']}"] = self.widgets([w["name"] for w in page["widgets"]])
                    self.screenshot(out / f"{host['host']}-{page['name']}.png".replace(" ", "_"))
        return pages

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(0.5)
        self.driver.save_screenshot(str(path))
