"""The one error type the text layer raises for bad input."""


class TextError(ValueError):
    """Input that cannot be cleaned, parsed or summarised; the message says why for a person."""
