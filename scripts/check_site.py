#!/usr/bin/env python
"""Check the built docs site in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Crawls every page reachable from index.html on a loopback server and fails if a page does not
load, a JavaScript error occurs, an internal link or #anchor does not resolve, any request
leaves 127.0.0.1, a docstring renders as a markup error, or an mlsys module has no API page. Saves a screenshot under the site folder.

Usage: python scripts/check_site.py [--site _docs] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
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


def modules() -> list[str]:
    lib = ROOT / "mlsys"
    return ["mlsys." + ".".join(p.relative_to(lib).with_suffix("").parts)
            for p in sorted(lib.rglob("*.py")) if not p.name.startswith("_")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default=str(ROOT / "_docs"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    site = Path(args.site)
    if not (site / "index.html").exists():
        print(f"no site at {site}: build it with scripts/build_docs.py", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    httpd, base = serve(site)
    problems: list[str] = []
    external: set[str] = set()
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []
    seen, queue = set(), deque([base + "index.html"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
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
        while queue:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            errors.clear()
            resp = page.goto(url, wait_until="load")
            if resp is None or resp.status != 200:
                problems.append(f"{url}: HTTP {resp.status if resp else 'no response'}")
                continue
            problems += [f"{url}: {e}" for e in errors]
            bad_markup = page.eval_on_selector_all(".problematic, .system-message", "els => els.map(e => e.textContent.slice(0, 80))")
            problems += [f"{url}: docstring markup error near {t!r}" for t in bad_markup]
            ids[url] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
            for href in hrefs:
                if href.startswith(("mailto:", "javascript:")):
                    continue
                full = urljoin(url, href)
                target, frag = urldefrag(full)
                if not target.startswith(base):
                    continue  # links to other sites are not followed (and never requested)
                if frag:
                    anchors.append((url, target, frag))
                if target.endswith("/"):
                    target += "index.html"
                if target.endswith(".html"):
                    queue.append(target)
                elif not (site / target[len(base):]).exists():
                    problems.append(f"{url}: broken link to {href}")
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
        page.goto(base + "index.html", wait_until="load")
        shot = site / "screenshot.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    httpd.shutdown()
    problems += [f"request left 127.0.0.1: {u}" for u in sorted(external)]
    print(f"site check: {len(seen)} pages, {len(anchors)} anchors, {len(modules())} modules with API pages checked; "
          f"{len(problems)} problems; screenshot {shot}")
    for pr in problems[:60]:
        print("  " + pr, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
