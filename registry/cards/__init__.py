"""Model cards: Markdown that says what a version is for, how it was made and where it falls short.

``parse`` reads the structured fields a card names (Hugging Face front matter, tfhub.dev
metadata lines); ``render`` turns a card into bounded, inert HTML for the pages and into
text for the terminal. Card edits are catalog writes: ``registry.catalog.cards``, and through
a server the client's ``RemoteCards``.
"""
