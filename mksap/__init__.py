"""mksap: MKSAP questions in, atomic flashcard statements and Anki decks out."""

__version__ = "0.1.0"
