"""The web page for people (``/``): static HTML, JavaScript and CSS shipped as package data."""
