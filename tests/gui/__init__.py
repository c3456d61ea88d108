"""Tests that drive a real headless browser (marker ``gui``); a package so its conftest does not shadow ``tests/conftest.py``."""
