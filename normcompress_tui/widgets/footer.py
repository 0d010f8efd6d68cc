"""The key bar: Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer rebuilds every key (a widget each, styled anew) whenever its screen says the bindings may
have changed: at each focus move, mount and `refresh_bindings`. Most of those leave the keys as they were.
"""

from textual.widgets import Footer


class KeyBar(Footer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def _keys(self) -> tuple:
        """What the bar draws: each shown binding's key, label, action, group, enabled state and tooltip."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return tuple(
            (
                key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                binding.group,
                enabled,
                tooltip,
            )
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette
        )

    def compose(self):
        if self._bindings_ready:
            self._shown = self._keys()
        yield from super().compose()

    async def recompose(self) -> None:
        if self._shown is not None and self._keys() == self._shown:
            return
        await super().recompose()
