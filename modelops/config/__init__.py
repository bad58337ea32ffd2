"""Model and pipeline configuration: JSON Schemas, loading from the working tree or a git ref, typed
immutable config objects with the source position of every value."""
