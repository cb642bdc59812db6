"""Search hits mark the words searched for, and nothing else in them is read as Markdown."""

from __future__ import annotations

from ui.search_marks import hit_markdown, marked_snippet


def test_every_match_is_bold_whatever_its_case() -> None:
    assert marked_snippet("A Quokka met a quokka", "quokka") == "A **Quokka** met a **quokka**"


def test_a_phrase_is_marked_whole_across_extra_spaces() -> None:
    assert marked_snippet("the red   fox ran", " red fox ") == "the **red fox** ran"


def test_markdown_links_images_html_and_streamlit_directives_stay_text() -> None:
    hostile = "![x](http://evil/p.png) [link](http://evil) <b>quokka</b> :red[hi] $x$ `c` *e*"
    marked = marked_snippet(hostile, "quokka")
    assert "**quokka**" in marked
    for syntax in ("![", "](", "<b>", ":red[", "$x$", "`c`", "*e*"):
        assert syntax not in marked.replace("**quokka**", ""), syntax
    assert marked.replace("\\", "").replace("**quokka**", "quokka") == hostile


def test_no_match_leaves_the_escaped_text() -> None:
    assert marked_snippet("Title only (no match)", "zebra") == "Title only \\(no match\\)"


def test_a_hit_is_its_line_about_it_over_the_snippet_in_one_element() -> None:
    shown = hit_markdown("2026-11-30 22:10 · 2 matching message(s)", "a [quokka](x)", "quokka")
    about, snippet = shown.split("  \n")
    assert about.startswith(":small[:gray[") and about.endswith("]]")
    assert "\\(s\\)" in about and "\\:" in about  # its own text escaped too
    assert snippet == "a \\[**quokka**\\]\\(x\\)"
