"""How runs look, everywhere: one colour-blind-safe palette (Okabe and Ito, 2008) in one order, so a run
is the same colour in the app, in `runs compare` and in a report; line styles and markers that tell
series apart in black and white; the figure formats. No plotting library is imported here.
"""

# orange, sky blue, bluish green, vermillion, reddish purple, blue, yellow, grey
PALETTE_RGB = [
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (213, 94, 0),
    (204, 121, 167),
    (0, 114, 178),
    (240, 228, 66),
    (150, 150, 150),
]
PALETTE = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in PALETTE_RGB]
LINE_STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3, 2, 3))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
TERMINAL_MARKERS = ["•", "+", "x", "o", "*", "#", "@", "%"]  # plotext markers, one per run where NO_COLOR is set
FORMATS = ("png", "svg", "pdf")
DEFAULT_DPI = 150
