"""CLI commands: thin typer wrappers over the library. Only this package prints."""
