"""MkDocs hook: the CLI reference page from the Typer app itself, through Typer's own documentation
generator (`typer ... utils docs`), so the page cannot go stale.

mkdocs-typer2 was tried first; it unescapes Typer's output, so `Lp:<p>` became an HTML tag and the `*` of
`0.5*L1+0.5*L2` emphasis. Here help texts are escaped as HTML (outside code spans, which Markdown
escapes itself) and a `*` between words is escaped for Markdown.
"""

import html
import re

MARK = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARK not in markdown:
        return markdown
    import typer
    from typer.cli import get_docs_for_click

    from normcompress.cli import app

    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="normcompress")
    reference = get_docs_for_click(obj=command, ctx=context, name="normcompress", title="normcompress")
    reference = "".join(
        part if part.startswith("`") else html.escape(part, quote=False) for part in re.split(r"(`[^`]*`)", reference)
    )
    reference = re.sub(r"(?<=\w)\*(?=\w)", r"\\*", reference)
    reference = re.sub(r"^# ", "## ", reference, flags=re.M)
    return markdown.replace(MARK, reference)
