"""IVOA TAP service in front of Qserv or an embedded DuckDB catalog."""

__version__ = "0.1.0"
