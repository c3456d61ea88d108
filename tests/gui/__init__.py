"""Tests that drive a real headless browser (marker ``gui``).

A package, so that its conftest does not shadow ``tests/conftest.py`` for ``from conftest import``.
"""
