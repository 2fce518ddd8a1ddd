"""The classes a model outputs, in order: the one definition that training (the window labels), the
models (their output size and label names), evaluation and scoring (which posterior is the
keyword's), the exported model's metadata and deployment share.
"""
SILENCE, UNKNOWN, KEYWORD = 0, 1, 2
KEYWORD_CLASS = KEYWORD  # index of the keyword's posterior in a model's output
CLASS_NAMES = ("_silence_", "_unknown_")  # the names of the classes before the keyword(s)


def class_names(keyword: str) -> list[str]:
    """The label list of a one-keyword model (what labels.json and the model metadata hold)."""
    return [*CLASS_NAMES, keyword]
