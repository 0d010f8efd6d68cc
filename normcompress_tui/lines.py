"""Parts of a line of text (legend entries, system figures) packed into lines of a pane's width."""

from rich.text import Text


def pack_lines(parts: list[Text], width: int, separator: str) -> Text:
    """The parts in lines of at most `width` cells, each line breaking between parts, never inside one
    (Rich breaks at any space, no-break ones included); a part wider than `width` gets a line of its own."""
    packed, used = Text(), 0
    for part in parts:
        if used and used + len(separator) + len(part) <= width:
            packed.append(separator)
            used += len(separator)
        elif used:
            packed.append("\n")
            used = 0
        packed.append_text(part)
        used += len(part)
    return packed
