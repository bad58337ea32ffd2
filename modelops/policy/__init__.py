"""Security and capacity rules over configs, and bandit over inference code. Each result is a Finding."""
