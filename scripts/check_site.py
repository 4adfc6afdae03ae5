#!/usr/bin/env python
"""Check the built docs site in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Crawls every page reachable from index.html on a loopback server at 1,280 px and fails if a page
does not load, a JavaScript error occurs, an internal link or #anchor does not resolve, any
request leaves 127.0.0.1, a docstring renders as a markup error, an mlsys module has no API page,
or a `pre` block or table overflows its container (content scrolled out of sight, or past the
content column). The same overflow count at a 390 px phone width is printed for information
(photographed pages only; every page with --phone-all), since tables that cannot fit a phone
scroll inside their own box there, as a last resort.

Screenshots (1,280 px and 390 px: the top of the page, and the page scrolled to its widest code
block or table) of the home page, a chapter page, a notebook page, an API page and the run report
(`--report`, default: the newest runs/*/report.html, skipped when there is none) go to
<site>/screenshots/; the report gets the same overflow check.

Usage: python scripts/check_site.py [--site _docs] [--chromium /usr/bin/chromium] [--report PATH] [--phone-all]
                                    [--workers N]
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ".bd-article"  # the content column of pydata-sphinx-theme
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


# One overflow rule for every page: a `pre` block or a table overflows when part of it is scrolled
# out of sight inside itself or any box between it and the content column, or when it reaches past
# the column. Elements that are not displayed (collapsed <details>) are skipped.
OVERFLOW_JS = """(sel) => {
  const root = document.querySelector(sel) || document.body;
  const right = Math.min(root.getBoundingClientRect().right, document.documentElement.clientWidth);
  const out = [];
  for (const el of root.querySelectorAll('pre, table')) {
    if (el.getClientRects().length === 0) continue;
    let why = null, spill = 0;
    for (let n = el; n && n !== root.parentElement; n = n.parentElement) {
      const over = n.scrollWidth - n.clientWidth;
      if (over <= 1) continue;
      if (getComputedStyle(n).overflowX !== 'visible') { why = over + ' px scrolled out of sight'; break; }
      if (n === el) spill = over;  // content spills out of its own box
    }
    const r = el.getBoundingClientRect();
    const past = Math.max(spill, Math.round(r.right - right));
    if (!why && past > 1) why = past + ' px past its box or the content column';
    if (why) {
      const text = (el.innerText || '').trim().split('\\n')[0].slice(0, 60);
      out.push(el.tagName.toLowerCase() + ' "' + text + '": ' + why);
    }
  }
  return out;
}"""

# The widest pre/table of the page (by the width its content asks for), scrolled into view for a screenshot.
WIDEST_JS = """(sel) => {
  const root = document.querySelector(sel) || document.body;
  let best = null, w = -1;
  for (const el of root.querySelectorAll('pre, table')) {
    if (el.getClientRects().length === 0) continue;
    const ws = el.style.whiteSpace;
    if (el.tagName === 'PRE') el.style.whiteSpace = 'pre';  // the width its longest line asks for
    const need = el.scrollWidth;
    el.style.whiteSpace = ws;
    if (need > w) { w = need; best = el; }
  }
  if (best) { best.scrollIntoView({block: 'start'}); window.scrollBy(0, -90); }
  return best ? best.tagName.toLowerCase() : null;
}"""

# Pages to photograph: (file name stem, page path); the first existing candidate of each kind is used.
SHOTS = [("home", ["index.html"]),
         ("chapter", ["chapters/feature-engineering.html", "chapters.html"]),
         ("notebook", ["features_store.html", "core.html"]),
         ("api", ["api/mlsys.features.store.html", "api/mlsys.core.html"])]
WIDTHS = (1280, 390)


def newest_report() -> Path | None:
    reports = sorted((ROOT / "runs").glob("*/report.html"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


def photograph(browser, url: str, shots: Path, stem: str, sel: str) -> list[str]:
    "Screenshots of `url` at each width (top of page, and scrolled to its widest pre/table); returns the files."
    files = []
    for width in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route("**/*", local_only)
        page.goto(url, wait_until="load")
        f = shots / f"{stem}-{width}.png"
        page.screenshot(path=str(f))
        files.append(f)
        if page.evaluate(WIDEST_JS, sel):
            f = shots / f"{stem}-{width}-widest.png"
            page.screenshot(path=str(f))
            files.append(f)
        page.close()
    return files


def local_only(route) -> None:
    url = route.request.url
    if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def overflow_at(browser, urls: list[str], width: int, sel: str) -> dict[str, list[str]]:
    "The overflowing pre/table elements of each page at `width`."
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.route("**/*", local_only)
    found = {}
    for url in urls:
        page.goto(url, wait_until="load")
        found[url] = page.evaluate(OVERFLOW_JS, sel)
    page.close()
    return found


def modules() -> list[str]:
    lib = ROOT / "mlsys"
    return ["mlsys." + ".".join(p.relative_to(lib).with_suffix("").parts)
            for p in sorted(lib.rglob("*.py")) if not p.name.startswith("_")]


def visit(base: str, urls: list[str], chromium: str) -> dict:
    "Load each page at 1,280 px in a browser of this process: what `main` judges (status, errors, markup, overflow, ids, links)."
    from playwright.sync_api import sync_playwright
    out, external = {}, set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            host = urlparse(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                r.continue_()
            else:
                external.add(r.request.url)
                r.abort()

        page.route("**/*", route)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"JS error: {e}"))
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        for url in urls:
            errors.clear()
            resp = page.goto(url, wait_until="load")
            if resp is None or resp.status != 200:
                out[url] = {"status": resp.status if resp else "no response"}
                continue
            out[url] = {"status": 200, "errors": list(errors),
                        "markup": page.eval_on_selector_all(".problematic, .system-message",
                                                            "els => els.map(e => e.textContent.slice(0, 80))"),
                        "overflow": page.evaluate(OVERFLOW_JS, ARTICLE),
                        "ids": page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"),
                        "hrefs": page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")}
        browser.close()
    return {"pages": out, "external": sorted(external)}


def crawl(site: Path, base: str, chromium: str, workers: int) -> tuple[dict, set]:
    """Every page reachable from index.html, loaded by `workers` browsers side by side: (url -> what `visit` saw, external).

    Each round loads the pages found and not yet loaded, split among the workers, and follows their links: the
    pages loaded are exactly those a one-page breadth-first crawl reaches."""
    from concurrent.futures import ProcessPoolExecutor
    seen: dict = {}
    external: set = set()
    todo = [base + "index.html"]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        while todo:
            parts = [todo[i::workers] for i in range(workers) if todo[i::workers]]
            loaded = {}
            for got in pool.map(visit, [base] * len(parts), parts, [chromium] * len(parts)):
                loaded.update(got["pages"])
                external.update(got["external"])
            seen.update((url, loaded[url]) for url in todo)  # in the order a one-page crawl loads them
            found = []
            for url in todo:
                for href in seen[url].get("hrefs", []):
                    if href.startswith(("mailto:", "javascript:")):
                        continue
                    target = urldefrag(urljoin(url, href))[0]
                    if target.startswith(base) and target.endswith("/"):
                        target += "index.html"
                    if target.startswith(base) and target.endswith(".html") and target not in seen and target not in found:
                        found.append(target)
            todo = found
    return seen, external


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default=str(ROOT / "_docs"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--phone-all", action="store_true", help="count 390 px overflows on every page, not only the photographed ones")
    ap.add_argument("--report", default=None, help="a run's report.html to photograph and check (default: newest under runs/)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="browsers loading pages side by side")
    args = ap.parse_args(argv)
    report = Path(args.report) if args.report else newest_report()
    if report is not None and not report.exists():
        print(f"no report at {report}", file=sys.stderr)
        return 1
    site = Path(args.site)
    if not (site / "index.html").exists():
        print(f"no site at {site}: build it with scripts/build_docs.py", file=sys.stderr)
        return 1
    if args.workers < 1:
        print(f"--workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    httpd, base = serve(site)
    problems: list[str] = []
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []
    overflow = 0
    pages, external = crawl(site, base, args.chromium, args.workers)
    seen = set(pages)
    for url, got in pages.items():
        if got["status"] != 200:
            problems.append(f"{url}: HTTP {got['status']}")
            continue
        problems += [f"{url}: {e}" for e in got["errors"]]
        problems += [f"{url}: docstring markup error near {t!r}" for t in got["markup"]]
        overflow += len(got["overflow"])
        problems += [f"{url[len(base):]}: at 1280 px, {o}" for o in got["overflow"]]
        ids[url] = set(got["ids"])
        for href in got["hrefs"]:
            if href.startswith(("mailto:", "javascript:")):
                continue
            target, frag = urldefrag(urljoin(url, href))
            if not target.startswith(base):
                continue  # links to other sites are not followed (and never requested)
            if frag:
                anchors.append((url, target, frag))
            if target.endswith("/"):
                target += "index.html"
            if not target.endswith(".html") and not (site / target[len(base):]).exists():
                problems.append(f"{url}: broken link to {href}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        for src, target, frag in anchors:
            if target.endswith("/"):
                target += "index.html"
            if target in ids and frag not in ids[target]:
                problems.append(f"{src}: anchor #{frag} not found in {target[len(base):]}")
            elif target not in ids and target.endswith(".html"):
                problems.append(f"{src}: link to missing page {target[len(base):]}")
        api_missing = []
        for m in modules():
            url = base + f"api/{m}.html"
            if url not in ids:
                api_missing.append(m)
                continue
        problems += [f"module {m} has no API page (api/{m}.html) reachable from the index" for m in api_missing]
        shot_pages = [base + next(c for c in cands if base + c in ids) for _, cands in SHOTS if any(base + c in ids for c in cands)]
        phone_pages = sorted(u for u in seen if u in ids) if args.phone_all else shot_pages
        phone = {u[len(base):]: len(o) for u, o in overflow_at(browser, phone_pages, 390, ARTICLE).items()}
        shots = site / "screenshots"
        shots.mkdir(exist_ok=True)
        files = []
        for stem, candidates in SHOTS:
            path = next((c for c in candidates if base + c in ids), None)
            if path:
                files += photograph(browser, base + path, shots, stem, ARTICLE)
        if report is not None:
            rhttpd, rbase = serve(report.parent)
            rurl = rbase + report.name
            problems += [f"{report}: at 1280 px, {o}" for o in overflow_at(browser, [rurl], 1280, "body")[rurl]]
            phone[str(report)] = len(overflow_at(browser, [rurl], 390, "body")[rurl])
            files += photograph(browser, rurl, shots, "report", "body")
            rhttpd.shutdown()
        browser.close()
    httpd.shutdown()
    problems += [f"request left 127.0.0.1: {u}" for u in sorted(external)]
    wide_phone = {k: v for k, v in phone.items() if v}
    print(f"site check: {len(seen)} pages, {len(anchors)} anchors, {len(modules())} modules with API pages checked; "
          f"{overflow} pre/table overflows at 1280 px; {len(problems)} problems")
    print(f"  at 390 px (information, not a failure): {sum(wide_phone.values())} pre/table elements overflow (most scroll inside their own box) on "
          f"{len(wide_phone)} of {len(phone)} pages" + (": " + ", ".join(f"{k} ({v})" for k, v in sorted(wide_phone.items(), key=lambda kv: -kv[1])[:8]) if wide_phone else ""))
    print(f"  run report: {report if report is not None else 'none under runs/ (no report screenshot)'}")
    print(f"  screenshots: {len(files)} in {site / 'screenshots'}")
    for pr in problems[:60]:
        print("  " + pr, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
