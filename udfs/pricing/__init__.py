"""The built-in pricing functions (executor side, pure pandas): data-bundle and voice pricing."""
