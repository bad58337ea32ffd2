"""Renderers of findings and results: terminal, JSON, JUnit XML, SARIF, Markdown, HTML."""
