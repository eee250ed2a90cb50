"""The one exception type for mistakes a user can fix."""


class PanelMlpError(Exception):
    """A problem with the user's input or configuration.

    The message is one line that names the file, line, column or config key at
    fault and says what to do about it. Rule scripts let it surface unchanged.
    """
