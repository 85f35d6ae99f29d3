"""The book builds with warnings as errors, and every page renders offline in Chromium."""

from __future__ import annotations

import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ERROR_OUTPUTS = ".output.error, .output.traceback, .output.stderr, .cell_output .stderr"
# MyST roles left unrendered: a reader sees "{glue:text}`key`" instead of a value
RAW_ROLE = re.compile(r"\{glue|\{doc\}|\{cite(:[a-z]+)?\}")
# what no cell output may show: an error, a warning, a folder of the machine that built it
BAD_OUTPUT = re.compile(r"Traceback|Warning|/tmp/|/root/|/home/")
CHAPTER_PAGE = re.compile(r"book/_generated/0[1-8]_")
FINDINGS_PAGE = "book/_generated/10_findings.html"
# solutions (collapsed dropdowns) whose text quotes no value glued from the chapter's numbers
SOLUTIONS_WITHOUT_GLUE_JS = """() => Array.from(document.querySelectorAll('.dropdown.admonition'))
  .filter(d => d.querySelector('.pasted-text, .pasted-inline') === null)
  .map(d => (d.querySelector('.admonition-title') || d).textContent.trim())"""


def findings_problems(text: str) -> list[str]:
    """What the findings page lacks: its sections, and a sentence from every chapter it quotes
    (a chapter that did not run says so, which the smoke build must not)."""
    problems = [
        f"no section {heading!r}"
        for heading in ("What the paper claims", "What this build measured", "What to run")
        if heading not in text
    ]
    if "has not run into this build" in text:
        problems.append("a chapter's findings are missing: 'has not run into this build'")
    for quoted in ("CMC@1", "pairs of Table 4", "class-activation map", "effective receptive"):
        if quoted not in text:
            problems.append(f"no sentence with {quoted!r}")
    return problems


# right edges of tables, images and display equations beyond the text column, measured on
# the box the reader sees (a scrolling wrapper clips its content)
OVERFLOW_JS = """() => {
  const col = document.querySelector("article.bd-article") || document.querySelector("main");
  if (!col) return [];
  const right = col.getBoundingClientRect().right + 1;
  const bad = [];
  for (const el of col.querySelectorAll('table, img, mjx-container[display="true"]')) {
    let box = el.getBoundingClientRect();
    for (let a = el; a && a !== col; a = a.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(a).overflowX)) {
        box = a.getBoundingClientRect();
        break;
      }
    }
    if (box.width > 0 && box.right > right) {
      bad.push(`${el.tagName.toLowerCase()} ${Math.round(box.right - right)} px too wide`);
    }
  }
  return bad;
}"""


@pytest.fixture(scope="session")
def built_book(executed_chapters) -> Path:
    """The HTML book built from the smoke-executed chapters (in a temporary copy)."""
    from prreid_lib.chapters import build_book

    failed = [c.name for c in executed_chapters.values() if c.error]
    assert not failed, f"chapters failed, the book cannot be built: {failed}"
    mathjax = ROOT / "book" / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.exists(), f"{mathjax} is missing: run `make mathjax` (make test does)"
    root = next(iter(executed_chapters.values())).output.parents[2]
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(
        ROOT / "book",
        root / "book",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("_generated"),
    )
    # tool caches a checkout holds after `make test`; the book must not pick up their pages
    for cache in (".pytest_cache", ".ruff_cache"):
        (root / cache).mkdir(exist_ok=True)
        (root / cache / "README.md").write_text("# cache\n\nnot a page of the book\n")
    index = build_book(root, strict=True)
    assert index.exists()
    return index.parent


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(built_book):
    pages = {p.relative_to(built_book).as_posix() for p in built_book.rglob("*.html")}
    assert "index.html" in pages
    assert "book/method.html" in pages
    assert any(p.startswith("book/_generated/01_data") for p in pages)
    assert FINDINGS_PAGE in pages
    # the method page's architecture figure is drawn from code at build time
    method = (built_book / "book" / "method.html").read_text()
    assert "architecture" in method and any(built_book.rglob("architecture*.png"))


def _serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # quiet
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.slow
def test_every_page_renders_offline_in_chromium(built_book):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get)")
    from playwright.sync_api import sync_playwright

    pages = sorted(
        p.relative_to(built_book).as_posix()
        for p in built_book.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts
    )
    server, base = _serve(built_book)
    outside: list[str] = []
    problems: list[str] = []

    def only_localhost(route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.route("**/*", only_localhost)
            page = context.new_page()
            for rel in pages:
                # networkidle: index.html redirects to the root chapter; wait for it to settle
                page.goto(f"{base}/{rel}", wait_until="networkidle")
                broken = page.evaluate(
                    "Array.from(document.images)"
                    ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
                )
                if broken:
                    problems.append(f"{rel}: images that do not load: {broken}")
                n_errors = page.locator(ERROR_OUTPUTS).count()
                if n_errors:
                    problems.append(f"{rel}: {n_errors} error/stderr outputs")
                if "Traceback (most recent call last)" in page.content():
                    problems.append(f"{rel}: a Python traceback is shown")
                raw = RAW_ROLE.search(page.inner_text("body"))
                if raw:
                    problems.append(f"{rel}: unrendered MyST role in the text: {raw.group(0)!r}")
                for wide in page.evaluate(OVERFLOW_JS):
                    problems.append(f"{rel}: {wide}, past the text column")
                outputs = page.evaluate(
                    "Array.from(document.querySelectorAll('.cell_output'))"
                    ".map(e => e.textContent).join('\\n')"
                )
                bad = BAD_OUTPUT.search(outputs)
                if bad:
                    problems.append(f"{rel}: a cell output shows {bad.group(0)!r}")
                if CHAPTER_PAGE.match(rel):
                    if page.locator(".learning-goals").count() == 0:
                        problems.append(f"{rel}: no learning-goals block")
                    solutions = page.locator(".admonition.dropdown")
                    if solutions.count() == 0:
                        problems.append(f"{rel}: no collapsed solutions")
                    shown = [
                        k
                        for k in range(solutions.count())
                        if "toggle-hidden" not in (solutions.nth(k).get_attribute("class") or "")
                    ]
                    if shown:
                        problems.append(f"{rel}: {len(shown)} solutions are not collapsed")
                    unanswered = page.evaluate(SOLUTIONS_WITHOUT_GLUE_JS)
                    if unanswered:
                        problems.append(f"{rel}: solutions without a glued number: {unanswered}")
                if rel == FINDINGS_PAGE:
                    problems += [f"{rel}: {p}" for p in findings_problems(page.inner_text("body"))]
            # MathJax is served locally and typesets the method's equations.
            page.goto(f"{base}/book/method.html", wait_until="load")
            page.wait_for_selector("mjx-container", timeout=20_000)
            # The search page finds the method page.
            page.goto(f"{base}/search.html?q=regularization", wait_until="load")
            page.wait_for_selector("#search-results li", timeout=20_000)
            browser.close()
    finally:
        server.shutdown()
    assert not outside, f"requests left 127.0.0.1: {sorted(set(outside))[:10]}"
    assert not problems, "\n".join(problems)


def test_the_findings_check_catches_a_missing_chapter_and_section():
    text = (
        "What the paper claims What this build measured What to run CMC@1 pairs of Table 4 "
        "class-activation map effective receptive"
    )
    assert findings_problems(text) == []
    broken = text.replace("What to run", "") + " Chapter 6 has not run into this build's folder"
    assert len(findings_problems(broken)) == 2
