"""One module per group of routes; each route parses, calls the incident service, and maps
the result to a ``…Public`` schema."""
